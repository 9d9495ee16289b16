import { AuthError } from '../errors/deny';
import type { Authenticator, AuthnOptions, AuthnResult } from './types';

/**
 * Tries identity kinds in the contract's order (bootstrap → service token → JWT). The first kind
 * that recognises the token decides; a token nobody recognises is `auth.invalid_token`. A kind that
 * throws (a bug) is turned into a deny here, never an allow.
 */
export function createAuthenticatorChain(kinds: readonly Authenticator[]): Authenticator {
  return {
    name: 'chain',
    async authenticate(token: string, nowMs: number, opts?: AuthnOptions): Promise<AuthnResult> {
      for (const k of kinds) {
        const r = await k.authenticate(token, nowMs, opts);
        if (r.kind !== 'skip') return r;
      }
      return { kind: 'rejected', error: new AuthError('auth.invalid_token') };
    },
  };
}
