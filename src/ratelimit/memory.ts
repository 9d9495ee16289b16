import { LRUCache } from 'lru-cache';
import { blockedFor, INACTIVE_WINDOW, isActive, NOT_BLOCKED, type LimitQuery, type LimitVerdict, type RateLimiter, type WindowState } from './types';

export interface MemoryLimiterOptions {
  intervalMs: number;
  /** Wall clock in ms; injected so tests can slide the window without sleeping. */
  now?: () => number;
  /** Distinct keys kept; random source IPs evict the least recently used key instead of growing memory. */
  maxKeys?: number;
  /** Timestamps kept over all keys, so a large limit cannot multiply the key bound into gigabytes. */
  maxEntries?: number;
  /** What backend() reports: 'memory' on its own, 'fallback' when standing in for Redis. */
  label?: 'memory' | 'fallback';
}

/**
 * Sliding log per key, the same algorithm as the Redis script: a key holds the timestamps of its failures
 * within the last interval, sorted ascending. Recording only happens while a key is below its limit, so a log
 * never grows past the limit and the memory bound is max(keys) x limit.
 */
export class MemoryLimiter implements RateLimiter {
  private readonly windows: LRUCache<string, number[]>;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly label: 'memory' | 'fallback';

  constructor(opts: MemoryLimiterOptions) {
    if (!(opts.intervalMs > 0)) throw new RangeError('rate-limit interval must be positive');
    this.intervalMs = opts.intervalMs;
    this.now = opts.now ?? Date.now;
    this.label = opts.label ?? 'memory';
    this.windows = new LRUCache<string, number[]>({
      max: opts.maxKeys ?? 100_000,
      maxSize: opts.maxEntries ?? 2_000_000,
      sizeCalculation: (log) => log.length + 1,
    });
  }

  readonly backend = (): 'memory' | 'fallback' => this.label;

  evaluate(queries: readonly LimitQuery[]): Promise<LimitVerdict[]> {
    return Promise.resolve(this.evaluateSync(queries));
  }

  /** Synchronous core: JS runs it to completion, which is what makes check-then-record atomic here. */
  evaluateSync(queries: readonly LimitQuery[]): LimitVerdict[] {
    const now = this.now();
    const cutoff = now - this.intervalMs;
    // One live log per distinct key, so a key named twice in a call is checked and recorded consistently.
    const logs = new Map<string, number[]>();
    for (const q of queries) {
      if (isActive(q) && !logs.has(q.key)) logs.set(q.key, this.liveLog(q.key, cutoff));
    }
    let anyBlocked = false;
    const verdicts = queries.map((q): LimitVerdict => {
      if (!isActive(q)) return NOT_BLOCKED;
      const log = logs.get(q.key)!;
      const limit = Math.floor(q.limit);
      if (log.length < limit) return NOT_BLOCKED;
      anyBlocked = true;
      // The entry whose expiry brings the count back below the limit; with count == limit, the oldest one.
      return blockedFor(log[log.length - limit]! + this.intervalMs - now);
    });
    if (anyBlocked) return verdicts;
    const touched = new Set<string>();
    for (const q of queries) {
      if (!isActive(q) || !q.failed) continue;
      insertSorted(logs.get(q.key)!, now);
      touched.add(q.key);
    }
    // set() again so the LRU recomputes the entry's size and recency.
    for (const key of touched) this.windows.set(key, logs.get(key)!);
    return verdicts;
  }

  peek(queries: readonly LimitQuery[]): Promise<WindowState[]> {
    return Promise.resolve(this.peekSync(queries));
  }

  /** evaluateSync's judgement without its writes: no recording, no expiry clean-up, no LRU recency bump. */
  peekSync(queries: readonly LimitQuery[]): WindowState[] {
    const now = this.now();
    const cutoff = now - this.intervalMs;
    return queries.map((q): WindowState => {
      if (!isActive(q)) return INACTIVE_WINDOW;
      const live = (this.windows.peek(q.key) ?? []).filter((t) => t > cutoff);
      const limit = Math.floor(q.limit);
      if (live.length < limit) return { count: live.length, limit, ...NOT_BLOCKED };
      return { count: live.length, limit, ...blockedFor(live[live.length - limit]! + this.intervalMs - now) };
    });
  }

  /** Drops every window; used when Redis comes back so stale fallback counts do not linger in memory. */
  clear(): void {
    this.windows.clear();
  }

  get size(): number {
    return this.windows.size;
  }

  close(): Promise<void> {
    this.windows.clear();
    return Promise.resolve();
  }

  private liveLog(key: string, cutoff: number): number[] {
    const log = this.windows.get(key);
    if (log === undefined) return [];
    let expired = 0;
    while (expired < log.length && log[expired]! <= cutoff) expired++;
    if (expired === log.length) {
      this.windows.delete(key);
      return [];
    }
    return expired === 0 ? log : log.slice(expired);
  }
}

/** The wall clock can step backwards (NTP); keeping the log sorted keeps "oldest entry" meaningful. */
function insertSorted(log: number[], t: number): void {
  let i = log.length;
  while (i > 0 && log[i - 1]! > t) i--;
  log.splice(i, 0, t);
}
