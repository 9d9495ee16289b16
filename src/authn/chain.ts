import { plainDeny } from '../errors/deny';
import { hashSecret } from '../store/records';
import type { Authenticator, AuthnOptions, AuthnResult } from './types';

const unknownToken = (): AuthnResult => ({ kind: 'rejected', error: plainDeny('auth.invalid_token') });

/**
 * Tries identity kinds in the contract's order (bootstrap → service token → JWT). The first kind
 * that recognises the token decides; a token nobody recognises is `auth.invalid_token`. A kind that
 * throws (a bug) is turned into a deny here, never an allow.
 */
export function createAuthenticatorChain(kinds: readonly Authenticator[]): Authenticator {
  return {
    name: 'chain',
    // Synchronous until a kind answers with a promise (a JWT that needs its keys): the common
    // cases (bootstrap, service token, cached JWT) then cost the pipeline no promise at all.
    authenticate(token: string, nowMs: number, given?: AuthnOptions): AuthnResult | Promise<AuthnResult> {
      const digest = hashSecret(token);
      const opts: AuthnOptions = given ? { ...given, digest } : { digest };
      const from = (i: number): AuthnResult | Promise<AuthnResult> => {
        for (; i < kinds.length; i++) {
          const r = kinds[i]!.authenticate(token, nowMs, opts);
          if (r instanceof Promise) return r.then((x) => (x.kind !== 'skip' ? x : from(i + 1)));
          if (r.kind !== 'skip') return r;
        }
        return unknownToken();
      };
      return from(0);
    },
  };
}
