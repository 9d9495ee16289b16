/**
 * The rate limiter as the Check pipeline sees it. The pipeline asks once per Check, with one query per
 * key that applies (client IP, and identity when known), so one Redis round trip covers the whole decision.
 */
export interface LimitQuery { readonly key: string; readonly limit: number; readonly failed: boolean }
export interface LimitVerdict { readonly blocked: boolean; readonly retryAfterSeconds: number } // 0 when not blocked
export interface RateLimiter {
  /** One call per Check, at most ONE Redis round trip (one Lua script / EVALSHA) for all queries.
   * Semantics, atomically over all queries: a key is blocked when its sliding window (interval seconds) already
   * holds >= limit failures. If ANY query is blocked, nothing is recorded. Otherwise each query with failed=true
   * records one failure at "now". Verdicts are returned in query order. retryAfterSeconds = whole seconds (ceil,
   * >= 1) until the window admits again (oldest counted failure + interval - now), not simply the interval. */
  evaluate(queries: readonly LimitQuery[]): Promise<LimitVerdict[]>;
  /** Read-only: each query's window as `evaluate` would judge it now, recording nothing (explain). `failed` is
   * ignored. Same backend choice and failure behaviour as `evaluate` (LimiterUnavailableError when failing closed). */
  peek(queries: readonly LimitQuery[]): Promise<WindowState[]>;
  /** 'redis' | 'memory' | 'fallback' (Redis configured but currently unreachable) */
  readonly backend: () => 'redis' | 'memory' | 'fallback';
  close(): Promise<void>;
}
/** One window as explain shows it: failures counted now, the limit, and the verdict `evaluate` would give. */
export interface WindowState extends LimitVerdict {
  readonly count: number;
  readonly limit: number;
}
export class LimiterUnavailableError extends Error {
  readonly code = 'limiter_unavailable' as const;
  override readonly name = 'LimiterUnavailableError';
}

export type LimiterBackend = ReturnType<RateLimiter['backend']>;

export const NOT_BLOCKED: LimitVerdict = Object.freeze({ blocked: false, retryAfterSeconds: 0 });

/** Milliseconds until the window admits again, as the whole seconds a Retry-After header carries. */
export function blockedFor(waitMs: number): LimitVerdict {
  return { blocked: true, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
}

/**
 * A limit of 0 (or less) means "disabled" in the guide's variables, so such a query is never blocked and
 * records nothing, rather than blocking everything as a literal ">= 0 failures" reading would.
 */
export function isActive(q: LimitQuery): boolean {
  return Number.isFinite(q.limit) && q.limit > 0;
}

/** The state of a query whose limit is off (0): nothing is counted. */
export const INACTIVE_WINDOW: WindowState = Object.freeze({ count: 0, limit: 0, ...NOT_BLOCKED });
