// Every kind of record the store holds, declared once: the named indexes a
// backend keeps for it (index name -> the payload's top-level field it
// indexes; the field holds a string) and whether the kind is listed whole.
// A backend builds its indexes from this table (PostgreSQL creates one
// expression index per field), so a caller can only ask by an index named
// here: there is no listing by a JavaScript predicate, which no database can
// run.
//
// `whole: true` marks the kinds that are small and listed whole by design
// (the admin listings, the switches and revocations a registry holds in
// memory); `all(kind)` is refused for any other kind.

interface KindSpec {
  readonly whole?: true;
  readonly indexes?: Readonly<Record<string, string>>;
}

export const KINDS = {
  clients: { whole: true, indexes: { source: 'source' } },
  interactions: {},
  browser_sessions: { indexes: { subject: 'sub' } },
  consents: {},
  accounts: { whole: true },
  authorization_codes: {},
  refresh_tokens: { indexes: { family: 'family', subject: 'sub', client: 'client_id' } },
  revoked_access_tokens: { whole: true },
  revocations: { whole: true },
  identities: { whole: true, indexes: { owner: 'owner', upstream: 'upstream', availability: 'availability' } },
  /** A person's choice of identity per (gateway, server); by identity, to end the choices of one that stops being selectable. */
  selections: { indexes: { identity: 'identity' } },
  upstreams: { whole: true },
  gateways: { whole: true },
  switches: { whole: true },
  connections: { whole: true },
  /** When each identity was first and last used, by identity id (audit/connections.ts). */
  identity_uses: { whole: true },
  upstream_clients: {},
  upstream_authorizations: {},
  /** The generated signing keys shared by the instances on one database (oauth/shared-signing-keys.ts). */
  signing_keys: {},
  /** Login and registration attempts counted across instances (oauth/throttle.ts StoreWindow). */
  throttles: {},
  /** 2025 MCP sessions of /mcp/{gateway} a client ended (DELETE), so no instance picks them up again. */
  ended_sessions: {},
} as const satisfies Record<string, KindSpec>;

export type Kind = keyof typeof KINDS;
/** The kinds `all()` may list. */
export type WholeKind = { [K in Kind]: (typeof KINDS)[K] extends { whole: true } ? K : never }[Kind];
/** The index names declared for a kind. */
export type IndexOf<K extends Kind> = (typeof KINDS)[K] extends { indexes: infer I } ? keyof I & string : never;

export const isKind = (kind: string): kind is Kind => Object.hasOwn(KINDS, kind);

/** The payload field an index reads; throws for an index the kind does not declare. */
export function indexField(kind: Kind, index: string): string {
  const indexes: Readonly<Record<string, string>> = (KINDS[kind] as KindSpec).indexes ?? {};
  const field = Object.hasOwn(indexes, index) ? indexes[index] : undefined;
  if (field === undefined) throw new Error(`the store has no index "${index}" on ${kind} (declared in server/store/kinds.ts)`);
  return field;
}

export function assertWhole(kind: Kind): void {
  if (!(KINDS[kind] as KindSpec).whole) throw new Error(`${kind} is not listed whole: ask by one of its indexes (server/store/kinds.ts)`);
}

/** Every distinct indexed field, for a backend that builds one index per field. */
export const INDEXED_FIELDS: readonly string[] = [...new Set(Object.values(KINDS).flatMap((k) => Object.values((k as KindSpec).indexes ?? {})))].sort();
