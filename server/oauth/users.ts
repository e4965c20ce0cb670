import bcrypt from 'bcryptjs';
import type { BuiltinUserConfig } from '../config/schema.ts';
import { bcryptCompare } from './bcrypt-pool.ts';

export interface User {
  username: string;
  scopes: string[];
  name?: string | undefined;
  email?: string | undefined;
  groups: string[];
  roles: string[];
}

interface StoredUser extends User {
  passwordHash: string;
}

// bcrypt reads at most 72 bytes of a password: two passwords that share their
// first 72 bytes would both be accepted. Longer passwords are refused instead.
export const BCRYPT_MAX_BYTES = 72;

// Compared against when the user does not exist, so an unknown username costs
// the same time as a wrong password (no enumeration by timing).
// (A hash of 24 random bytes nobody kept.)
const DUMMY_HASH = '$2b$10$vnEtqJ4tY0vTcg3jeojokuUMST3GLlYLbfH8Q7d9LdFWp9xI6o7pS';

/** The users of `oauth_server.builtin.users`, with their passwords as bcrypt hashes. */
export class BuiltinUsers {
  private constructor(private readonly users: Map<string, StoredUser>) {}

  static async fromConfig(users: BuiltinUserConfig[], env: NodeJS.ProcessEnv = process.env): Promise<BuiltinUsers> {
    const map = new Map<string, StoredUser>();
    for (const [i, user] of users.entries()) {
      let passwordHash = user.password_hash;
      if (user.password_env !== undefined) {
        const password = env[user.password_env];
        if (!password) throw new Error(`oauth_server.builtin.users[${i}].password_env: environment variable ${user.password_env} is not set`);
        if (Buffer.byteLength(password) > BCRYPT_MAX_BYTES) {
          throw new Error(`oauth_server.builtin.users[${i}].password_env: the password is longer than bcrypt's ${BCRYPT_MAX_BYTES} bytes`);
        }
        passwordHash = await bcrypt.hash(password, 10);
      }
      if (map.has(user.username)) throw new Error(`oauth_server.builtin.users[${i}].username: duplicate user "${user.username}"`);
      map.set(user.username, { username: user.username, scopes: user.scopes, name: user.name, email: user.email, groups: user.groups, roles: user.roles, passwordHash: passwordHash! });
    }
    return new BuiltinUsers(map);
  }

  get(username: string): User | undefined {
    const user = this.users.get(username);
    return user && { username: user.username, scopes: user.scopes, name: user.name, email: user.email, groups: user.groups, roles: user.roles };
  }

  /** The user when the password is right; undefined otherwise, in the same time either way. */
  async verify(username: string, password: string): Promise<User | undefined> {
    const user = this.users.get(username);
    const tooLong = Buffer.byteLength(password) > BCRYPT_MAX_BYTES;
    // On a worker thread (bcrypt-pool.ts): a sign-in does not stall the MCP traffic.
    const ok = await bcryptCompare(tooLong ? '' : password, user?.passwordHash ?? DUMMY_HASH);
    return ok && user && !tooLong ? this.get(username) : undefined;
  }
}
