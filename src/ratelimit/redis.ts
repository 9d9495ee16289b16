import { randomBytes } from 'node:crypto';
import { blockedFor, INACTIVE_WINDOW, isActive, NOT_BLOCKED, type LimitQuery, type LimitVerdict, type RateLimiter, type WindowState } from './types';
import { closeRedisClient, createRedisClient, type RedisLike } from './redis-client';

/**
 * The whole decision of one Check in one script, so it is atomic across replicas and costs one round trip.
 *
 * Sliding log (a ZSET of failure times per key) rather than a sliding counter: limits are small (failures per
 * minute), a log never holds more than `limit` entries because blocked calls record nothing, and only a log
 * gives an exact window and an exact Retry-After (oldest entry + interval - now); a two-bucket counter
 * approximates both.
 *
 * KEYS[i]  sliding log of key i: a ZSET of failures scored by Redis server time in ms.
 * ARGV[1]  interval in ms.   ARGV[2]  an id unique to this call (keeps ZSET members unique across replicas).
 * ARGV[1+2i] limit of key i. ARGV[2+2i] '1' when this Check failed and key i should record it.
 * Returns  per key, ms until its window admits again; 0 when not blocked.
 *
 * Server time (TIME) rather than the caller's clock, so replicas with skewed clocks share one window.
 * Only keys with an active limit are sent (the caller filters limit <= 0).
 */
export const SLIDING_LOG_LUA = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local cutoff = now - interval
local waits = {}
local blocked = false
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', cutoff)
  local limit = tonumber(ARGV[1 + 2 * i])
  local count = redis.call('ZCARD', KEYS[i])
  waits[i] = 0
  if count >= limit then
    -- the entry whose expiry brings the count back below the limit (the oldest when count == limit)
    local entry = redis.call('ZRANGE', KEYS[i], count - limit, count - limit, 'WITHSCORES')
    local wait = tonumber(entry[2]) + interval - now
    if wait < 1 then wait = 1 end
    waits[i] = wait
    blocked = true
  end
end
if not blocked then
  for i = 1, #KEYS do
    if ARGV[2 + 2 * i] == '1' then
      redis.call('ZADD', KEYS[i], now, now .. ':' .. ARGV[2] .. ':' .. i)
      redis.call('PEXPIRE', KEYS[i], interval)
    end
  end
end
return waits
`;

/**
 * SLIDING_LOG_LUA's judgement without a single write (no ZREMRANGEBYSCORE, ZADD or PEXPIRE): explain reads
 * the windows a Check would meet and leaves them exactly as they were. Entries at or before the cutoff are
 * what the writing script would have removed, so they are not counted.
 * KEYS[i] as above.  ARGV[1] interval in ms.  ARGV[1+i] limit of key i.
 * Returns  per key two numbers: live failures, ms until the window admits again (0 when not blocked).
 */
export const PEEK_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local after = '(' .. (now - interval)
local out = {}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[1 + i])
  local count = redis.call('ZCOUNT', KEYS[i], after, '+inf')
  local wait = 0
  if count >= limit then
    local entry = redis.call('ZRANGEBYSCORE', KEYS[i], after, '+inf', 'WITHSCORES', 'LIMIT', count - limit, 1)
    wait = tonumber(entry[2]) + interval - now
    if wait < 1 then wait = 1 end
  end
  out[2 * i - 1] = count
  out[2 * i] = wait
end
return out
`;

export interface RedisLimiterOptions {
  url: string;
  /** Prepended to every caller key; wrapped in a Cluster hash tag unless it already holds one. */
  keyPrefix: string;
  intervalMs: number;
  commandTimeoutMs: number;
}

type ScriptRunner = {
  orcheoAuthzSlidingLog(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<number[]>;
  orcheoAuthzPeek(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<number[]>;
};

/**
 * One script spans several keys (IP and identity) and Redis Cluster runs a script only when all its keys hash
 * to one slot, so every key carries the same hash tag. The price is that all rate-limit keys live on one
 * shard; the load is one small script per Check, which one shard absorbs easily.
 */
export function clusterKeyPrefix(prefix: string): string {
  if (/\{[^}]+\}/.test(prefix)) return prefix;
  const stem = prefix.replace(/:+$/, '') || 'orcheo-authz:rl';
  return `{${stem}}:`;
}

/** Sliding log in Redis. Throws on any Redis failure; ResilientLimiter decides what a failure means. */
export class RedisLimiter implements RateLimiter {
  readonly client: RedisLike;
  readonly prefix: string;
  private readonly intervalMs: number;
  /** Members must be unique per failure across replicas: a random instance id plus a counter is, cheaply. */
  private readonly instanceId = randomBytes(6).toString('base64url');
  private seq = 0;

  constructor(opts: RedisLimiterOptions) {
    if (!(opts.intervalMs > 0)) throw new RangeError('rate-limit interval must be positive');
    this.intervalMs = Math.round(opts.intervalMs);
    this.prefix = clusterKeyPrefix(opts.keyPrefix);
    this.client = createRedisClient(opts.url, { commandTimeoutMs: opts.commandTimeoutMs });
    // ioredis sends EVALSHA and falls back to EVAL on NOSCRIPT (e.g. after a restart or failover).
    this.client.defineCommand('orcheoAuthzSlidingLog', { lua: SLIDING_LOG_LUA });
    this.client.defineCommand('orcheoAuthzPeek', { lua: PEEK_LUA });
  }

  readonly backend = (): 'redis' => 'redis';

  async evaluate(queries: readonly LimitQuery[]): Promise<LimitVerdict[]> {
    const active: number[] = [];
    queries.forEach((q, i) => {
      if (isActive(q)) active.push(i);
    });
    if (active.length === 0) return queries.map(() => NOT_BLOCKED);
    const keys = active.map((i) => this.prefix + queries[i]!.key);
    const args: (string | number)[] = [this.intervalMs, `${this.instanceId}.${(this.seq = (this.seq + 1) % Number.MAX_SAFE_INTEGER)}`];
    for (const i of active) args.push(Math.floor(queries[i]!.limit), queries[i]!.failed ? '1' : '0');
    const waits = await (this.client as unknown as ScriptRunner).orcheoAuthzSlidingLog(keys.length, ...keys, ...args);
    const verdicts: LimitVerdict[] = queries.map(() => NOT_BLOCKED);
    active.forEach((qi, k) => {
      const wait = Number(waits[k]);
      if (wait > 0) verdicts[qi] = blockedFor(wait);
    });
    return verdicts;
  }

  async peek(queries: readonly LimitQuery[]): Promise<WindowState[]> {
    const active = queries.filter(isActive);
    if (active.length === 0) return queries.map(() => INACTIVE_WINDOW);
    const keys = active.map((q) => this.prefix + q.key);
    const out = await (this.client as unknown as ScriptRunner).orcheoAuthzPeek(keys.length, ...keys, this.intervalMs, ...active.map((q) => Math.floor(q.limit)));
    let k = 0;
    return queries.map((q): WindowState => {
      if (!isActive(q)) return INACTIVE_WINDOW;
      const count = Number(out[2 * k]);
      const wait = Number(out[2 * k + 1]);
      k++;
      return { count, limit: Math.floor(q.limit), ...(wait > 0 ? blockedFor(wait) : NOT_BLOCKED) };
    });
  }

  isReady(): boolean {
    return this.client.status === 'ready';
  }

  close(): Promise<void> {
    return closeRedisClient(this.client);
  }
}
