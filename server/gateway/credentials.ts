import type { Logger } from '../log.ts';
import type { Identities } from '../vault/identities.ts';
import type { Assignment } from './catalog.ts';
import { CODES, type GatewayFailure } from './jsonrpc.ts';

export class CredentialFailure extends Error {
  constructor(readonly failure: GatewayFailure) {
    super(failure.message);
  }
}

/**
 * Step 3-4 of the request path: which identity serves this assignment, and the
 * header(s) that carry its credential upstream.
 */
export class Credentials {
  /** Decrypted shared secrets by identity id; an entry is dropped the moment its record changes. */
  private readonly cache = new Map<string, string>();

  constructor(
    private readonly identities: Identities,
    private readonly log: Logger,
  ) {
    identities.records.onChange((id) => this.cache.delete(id));
  }

  async headersFor(assignment: Assignment): Promise<Record<string, string>> {
    const { credential } = assignment.upstream;
    if (credential.type === 'none') return {};
    const identityId = assignment.sharedIdentity;
    let secret = identityId === undefined ? assignment.upstream.envSecret! : this.cache.get(identityId);
    if (secret === undefined) {
      secret = await this.sharedSecret(assignment, identityId!);
      this.cache.set(identityId!, secret);
    }
    return credential.type === 'bearer' ? { authorization: `Bearer ${secret}` } : { [credential.name.toLowerCase()]: secret };
  }

  private async sharedSecret(assignment: Assignment, identityId: string): Promise<string> {
    const identity = await this.identities.records.find(identityId);
    const where = `/mcp/${assignment.gateway}/${assignment.name}`;
    if (!identity || identity.upstream !== assignment.upstream.id || identity.availability !== 'global') {
      throw new CredentialFailure({
        status: 503,
        code: CODES.credential,
        step: 'vault',
        reason: 'shared_identity_missing',
        message: `the shared identity "${identityId}" for ${where} is missing; an admin must choose a global identity for this server`,
      });
    }
    if (identity.disabled) {
      throw new CredentialFailure({
        status: 403,
        code: CODES.forbidden,
        step: 'vault',
        reason: 'identity_disabled',
        message: `the shared identity "${identityId}" for ${where} is disabled by an admin`,
      });
    }
    try {
      return this.identities.reveal(identity);
    } catch (err) {
      this.log.error('identity %s could not be decrypted: %s', identityId, (err as Error).message);
      throw new CredentialFailure({
        status: 500,
        code: CODES.credential,
        step: 'vault',
        reason: 'identity_unreadable',
        message: `the credential of identity "${identityId}" could not be read; an admin must check the vault key`,
      });
    }
  }
}
