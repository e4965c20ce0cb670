import type { Gateway } from '../registry-client.ts';
import { isWithinRegistry } from '../registry-url.ts';

// Gateways (GET /api/v1/gateways) → the MCP server definitions VS Code shows:
// one Streamable HTTP server per gateway, at the gateway's /mcp/{gateway}
// endpoint, which serves all of the gateway's servers as one.

export interface GatewayDefinition {
  gatewayId: string;
  /** Shown in VS Code's MCP server list. */
  label: string;
  /** The gateway's MCP endpoint. */
  uri: string;
  /** Changes when the gateway's servers change, or a token or identity does (the generation): VS Code then re-reads the tools. */
  version: string;
  visibility: 'public' | 'private';
}

export interface Skipped {
  gatewayId: string;
  reason: string;
}

/**
 * One definition per gateway. A gateway whose endpoint is not under the
 * registry is skipped: the registry's tokens are audience-bound to the
 * registry, and the extension never sends them anywhere else.
 */
export function gatewayDefinitions(registry: string, gateways: readonly Gateway[], generation = 0): { definitions: GatewayDefinition[]; skipped: Skipped[] } {
  const definitions: GatewayDefinition[] = [];
  const skipped: Skipped[] = [];
  const seen = new Set<string>();
  const names = countBy(gateways.map((gw) => gw.name || gw.id));
  for (const gw of gateways) {
    if (seen.has(gw.id)) {
      skipped.push({ gatewayId: gw.id, reason: 'listed twice' });
      continue;
    }
    seen.add(gw.id);
    if (!isWithinRegistry(registry, gw.mcpUrl)) {
      skipped.push({ gatewayId: gw.id, reason: `its endpoint ${gw.mcpUrl} is not on the registry ${registry}` });
      continue;
    }
    const name = gw.name || gw.id;
    // Two gateways with one display name stay apart by id.
    const label = names.get(name)! > 1 ? `Keygate: ${name} (${gw.id})` : `Keygate: ${name}`;
    definitions.push({ gatewayId: gw.id, label, uri: gw.mcpUrl, version: generation ? `${serversVersion(gw)}.${generation}` : serversVersion(gw), visibility: gw.visibility });
  }
  return { definitions, skipped };
}

/** A short digest of the gateway's server list (order-independent). */
export function serversVersion(gateway: Gateway): string {
  const canonical = gateway.servers
    .map((s) => `${s.name}\u0000${s.upstream}\u0000${s.identity}`)
    .sort()
    .join('\u0001');
  return fnv1a32(canonical).toString(16).padStart(8, '0');
}

// FNV-1a, 32 bit: a change detector, not a security boundary.
function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

function countBy(values: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return counts;
}
