/**
 * jose error → deny code. The messages sent to clients are the contract's fixed ones (from
 * DENY_CODES); jose's own message only goes to `detail`, which is logged at debug and never
 * contains the token (jose messages name claims, not their values).
 */
import { errors } from 'jose';
import { AuthError, type DenyCode } from '../../errors/deny';
import type { AuthnResult } from '../types';

export interface MappedError {
  readonly code: DenyCode;
  readonly detail: string;
  /**
   * The signature checked out and only a claim failed, so `sub` is trustworthy enough to count
   * this failure against the identity's rate limit.
   */
  readonly verifiedSubject: string | undefined;
}

export function mapJoseError(err: unknown): MappedError {
  const detail = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  if (err instanceof errors.JWTExpired) {
    return { code: 'auth.token_expired', detail, verifiedSubject: subjectOf(err.payload) };
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    return { code: claimCode(err.claim), detail, verifiedSubject: subjectOf(err.payload) };
  }
  if (err instanceof errors.JOSEAlgNotAllowed) {
    return { code: 'auth.unsupported_algorithm', detail, verifiedSubject: undefined };
  }
  // JOSENotSupported is deliberately not unsupported_algorithm: algs are vetted before jose runs,
  // so by then it means an unrecognised `crit` extension or an unusable key, i.e. a bad token.
  // Bad signature, malformed JWS/JWT, broken key material (TypeError from key import or RSA
  // modulus checks), anything unexpected: the token is simply not acceptable.
  return { code: 'auth.invalid_token', detail, verifiedSubject: undefined };
}

function claimCode(claim: string): DenyCode {
  if (claim === 'aud') return 'auth.invalid_audience';
  if (claim === 'iss') return 'auth.invalid_issuer';
  return 'auth.invalid_token';
}

function subjectOf(payload: unknown): string | undefined {
  if (!payload || typeof payload !== 'object') return undefined;
  const sub = (payload as Record<string, unknown>)['sub'];
  return typeof sub === 'string' && sub.length > 0 ? sub : undefined;
}

export function rejected(
  code: DenyCode,
  opts: { identityKey?: string | undefined; detail?: string; retryAfterSeconds?: number } = {},
): AuthnResult {
  const extra: { detail?: string; retryAfterSeconds?: number } = {};
  if (opts.detail !== undefined) extra.detail = opts.detail;
  if (opts.retryAfterSeconds !== undefined) extra.retryAfterSeconds = opts.retryAfterSeconds;
  return { kind: 'rejected', error: new AuthError(code, undefined, extra), identityKey: opts.identityKey };
}
