import type { Logger } from 'pino';
import { MemoryLimiter } from './memory';
import { RedisLimiter } from './redis';
import { redactRedisUrl } from './redis-url';
import { ResilientLimiter } from './resilient';
import type { RateLimiter } from './types';

export { LimiterUnavailableError, type LimitQuery, type LimitVerdict, type RateLimiter } from './types';
export { normalizeIp, resolveClientIp } from './client-ip';
export { redactRedisUrl } from './redis-url';

export interface LimiterOptions {
  redisUrl?: string;
  keyPrefix?: string /* default 'orcheo-authz:rl:' */;
  intervalSeconds: number;
  failClosed: boolean;
  commandTimeoutMs?: number /* default ~100 */;
  logger: Logger;
  now?: () => number /* ms, for memory limiter */;
  onBackendChange?: (b: 'redis' | 'memory' | 'fallback') => void;
}

export const DEFAULT_KEY_PREFIX = 'orcheo-authz:rl:';
export const DEFAULT_COMMAND_TIMEOUT_MS = 100;

/**
 * No redisUrl: in-process windows (one replica, or per-replica limits). With redisUrl: windows shared through
 * Redis, answered from in-process windows while Redis is unreachable unless failClosed.
 */
export function createRateLimiter(opts: LimiterOptions): RateLimiter {
  if (!(Number.isFinite(opts.intervalSeconds) && opts.intervalSeconds > 0)) {
    throw new RangeError(`rate-limit interval must be a positive number of seconds, got ${opts.intervalSeconds}`);
  }
  const intervalMs = Math.max(1, Math.round(opts.intervalSeconds * 1000));
  const redisUrl = opts.redisUrl?.trim();
  if (!redisUrl) return new MemoryLimiter({ intervalMs, now: opts.now });

  const commandTimeoutMs = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const redis = new RedisLimiter({
    url: redisUrl,
    keyPrefix: opts.keyPrefix ?? DEFAULT_KEY_PREFIX,
    intervalMs,
    commandTimeoutMs,
  });
  const fallback = new MemoryLimiter({ intervalMs, now: opts.now, label: 'fallback' });
  return new ResilientLimiter(redis, fallback, {
    failClosed: opts.failClosed,
    logger: opts.logger,
    redisLabel: redactRedisUrl(redisUrl),
    commandTimeoutMs,
    onBackendChange: opts.onBackendChange,
  });
}
