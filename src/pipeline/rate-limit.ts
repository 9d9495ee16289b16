import { AuthError } from '../errors/deny';
import { LimiterUnavailableError, type LimitQuery, type LimitVerdict, type RateLimiter } from '../ratelimit/types';
import type { MaybePromise } from './decision';
import type { Trace } from './explain';
import type { CheckInput } from './request';

/** Seconds a client is asked to wait when the limiter fails closed (or a phase broke). */
export const LIMITER_RETRY_AFTER = 5;

/** What authentication and authorization concluded, as far as the limiter cares. */
export interface Attempt {
  readonly error?: AuthError | undefined;
  /** Whose failure this is (namespaced by kind, identity-key.ts), for the per-identity limit. */
  readonly key?: string | undefined;
  /** A 503 for a token the store could not look up: still a failed attempt for its IP. */
  readonly unknownDuringOutage?: boolean | undefined;
}

export interface RateLimitDeps {
  readonly limiter?: RateLimiter | undefined;
  readonly limits: { readonly ip: number; readonly identity: number };
}

function limiterDown(err: unknown, trace: Trace | undefined): AuthError {
  if (!(err instanceof LimiterUnavailableError)) throw err;
  if (trace) trace.limiterUnavailable = true;
  return new AuthError('auth.backend_unavailable', undefined, { retryAfterSeconds: LIMITER_RETRY_AFTER, detail: 'rate limiter unavailable (fail closed)' });
}

/**
 * Phase 4, rate limit: one limiter call for the client IP's window and, when known, the identity's.
 * A 401 counts against both, a 403 against the identity only. With limits off it answers at once
 * (no promise), so the Check stays synchronous. Explain (`trace`) peeks instead, recording nothing.
 */
export function rateLimit(deps: RateLimitDeps, clientIpOf: (input: CheckInput) => string, input: CheckInput, a: Attempt, trace: Trace | undefined): MaybePromise<AuthError | undefined> {
  const { ip, identity } = deps.limits;
  const limiter = deps.limiter;
  if (!limiter || (ip <= 0 && identity <= 0)) return undefined;
  const status = a.error?.httpStatus;
  const queries: LimitQuery[] = [];
  const clientIp = clientIpOf(input);
  if (ip > 0) queries.push({ key: `ip:${clientIp}`, limit: ip, failed: status === 401 || a.unknownDuringOutage === true });
  if (identity > 0 && a.key !== undefined) queries.push({ key: `id:${a.key}`, limit: identity, failed: status === 401 || status === 403 });
  if (queries.length === 0) return undefined;
  const blocked = (verdicts: readonly LimitVerdict[]): AuthError | undefined => {
    for (let i = 0; i < queries.length; i++) {
      const verdict = verdicts[i];
      if (!verdict?.blocked) continue;
      const opts = { retryAfterSeconds: verdict.retryAfterSeconds };
      return queries[i]!.key.startsWith('ip:')
        ? new AuthError('auth.rate_limited.ip', `Too many authentication attempts from IP ${clientIp}`, opts)
        : new AuthError('auth.rate_limited.identity', 'Too many authentication attempts for this identity', opts);
    }
    return undefined;
  };
  let pending: Promise<readonly LimitVerdict[]>;
  try {
    pending = trace
      ? limiter.peek(queries).then((states) => {
          trace.windows = queries.map((q, i) => ({ window: q.key.startsWith('ip:') ? 'ip' : 'identity', subject: q.key.slice(3), state: states[i]! }));
          return states;
        })
      : limiter.evaluate(queries);
  } catch (err) {
    return limiterDown(err, trace);
  }
  return pending.then(blocked, (err: unknown) => limiterDown(err, trace));
}
