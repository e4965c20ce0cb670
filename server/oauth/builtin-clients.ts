// The ids of the clients built into every registry, apart from their
// definitions (clients.ts), so the CLI can name its own without loading the
// authorization server.

/** keygate-registry login: a public, native client whose redirect is a loopback URI on a port of its own (RFC 8252 §7.3). */
export const CLI_CLIENT_ID = 'keygate-cli';
