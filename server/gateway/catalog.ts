import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Config, UpstreamConfig } from '../config/schema.ts';

// The gateways, their assignments and the upstreams they reach, as the
// forwarding path needs them: resolved once, with a pooled connection agent
// per upstream.

export interface Upstream {
  id: string;
  name: string;
  url: URL;
  credential: UpstreamConfig['credential'];
  /** The upstream's own env-backed credential value, for shared assignments without a shared_identity. */
  envSecret: string | undefined;
  timeoutMs: number;
  agent: HttpAgent;
}

export interface Assignment {
  gateway: string;
  /** The path segment: /mcp/{gateway}/{name}. */
  name: string;
  upstream: Upstream;
  identity: 'shared';
  sharedIdentity: string | undefined;
}

export interface Gateway {
  id: string;
  name: string;
  description: string | undefined;
  visibility: 'public' | 'private';
  servers: Map<string, Assignment>;
}

export class Catalog {
  readonly upstreams = new Map<string, Upstream>();
  readonly gateways = new Map<string, Gateway>();

  constructor(config: Config, env: NodeJS.ProcessEnv = process.env) {
    for (const [i, up] of config.upstreams.entries()) {
      const envName = up.credential.type === 'bearer' ? up.credential.token_env : up.credential.type === 'header' ? up.credential.value_env : undefined;
      const envSecret = envName === undefined ? undefined : env[envName];
      if (envName !== undefined && !envSecret) {
        throw new Error(`upstreams[${i}].credential: environment variable ${envName} is not set`);
      }
      const url = new URL(up.url);
      const agentOptions = { keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' as const };
      this.upstreams.set(up.id, {
        id: up.id,
        name: up.name ?? up.id,
        url,
        credential: up.credential,
        envSecret,
        timeoutMs: up.timeout * 1000,
        agent: url.protocol === 'https:' ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions),
      });
    }
    for (const gw of config.gateways) {
      const servers = new Map<string, Assignment>();
      for (const a of gw.servers) {
        const name = a.name ?? a.upstream;
        servers.set(name, { gateway: gw.id, name, upstream: this.upstreams.get(a.upstream)!, identity: a.identity, sharedIdentity: a.shared_identity });
      }
      this.gateways.set(gw.id, { id: gw.id, name: gw.name ?? gw.id, description: gw.description, visibility: gw.visibility, servers });
    }
  }

  has(gateway: string, server?: string): boolean {
    const gw = this.gateways.get(gateway);
    return gw !== undefined && (server === undefined || gw.servers.has(server));
  }

  close(): void {
    for (const up of this.upstreams.values()) up.agent.destroy();
  }
}
