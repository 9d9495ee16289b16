import { AuthError, plainDeny } from '../errors/deny';
import { hashSecret, type TokenRecord } from '../store/records';
import type { TokenIndex } from '../store/token-index';
import type { Authenticator, AuthnOptions, AuthnResult, Identity } from './types';

/** Seconds a client is asked to wait when the token store cannot be consulted. */
const STORE_RETRY_AFTER = 5;

/** JWT-shaped tokens go on to the JWT kind even when the index is stale (their 503s are the key provider's). */
export const looksLikeJwt = (t: string): boolean => t.split('.').length === 3;

function toIdentity(r: TokenRecord): Identity {
  return Object.freeze({
    authenticated: true,
    type: 'service',
    // A rotated-out secret (`name~rN`) still speaks for the token's name during its overlap, so
    // upstreams keyed on the subject see no change; the token id tells the two secrets apart.
    subject: r.rotatedTo ?? r.id,
    tokenId: r.id,
    scopes: new Set(r.scopes),
    workspaces: new Set(r.workspaces),
    source: 'service_token',
    expiresAt: r.expiresAt,
  });
}

/**
 * Service tokens, looked up by SHA-256 in the in-memory index: no query per request. When the index
 * has not synced recently, "not found" cannot be trusted, so an unknown non-JWT token is a 503
 * rather than a 401 (a token created on another replica during an outage must not be refused).
 */
export function createServiceTokenAuthenticator(index: TokenIndex): Authenticator {
  // Records are replaced, never mutated, when a token changes: one answer per record version.
  const answers = new WeakMap<TokenRecord, AuthnResult>();
  return {
    name: 'service_token',
    authenticate(token: string, nowMs: number, opts?: AuthnOptions): AuthnResult {
      const r = index.lookup(opts?.digest ?? hashSecret(token));
      if (!r) {
        if (!index.fresh && !looksLikeJwt(token)) {
          return { kind: 'rejected', error: new AuthError('auth.backend_unavailable', undefined, { retryAfterSeconds: STORE_RETRY_AFTER, detail: 'token index not synced' }) };
        }
        return { kind: 'skip' };
      }
      const key = r.id;
      // revoked_at/expires_at are instants on the database's clock: compare on it, so a replica
      // whose clock runs slow does not keep accepting a token revoked elsewhere.
      const dbNow = nowMs + index.clockOffsetMs;
      if (r.revokedAt !== undefined && r.revokedAt <= dbNow) return { kind: 'rejected', error: plainDeny('auth.token_revoked'), identityKey: key };
      if (r.expiresAt !== undefined && r.expiresAt <= dbNow) return { kind: 'rejected', error: plainDeny('auth.token_expired'), identityKey: key };
      let answer = answers.get(r);
      if (!answer) {
        answer = Object.freeze({ kind: 'identified', identity: toIdentity(r) } as const);
        answers.set(r, answer);
      }
      return answer;
    },
  };
}
