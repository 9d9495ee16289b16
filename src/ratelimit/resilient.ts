import type { Logger } from 'pino';
import { LimiterUnavailableError, type LimitQuery, type LimitVerdict, type RateLimiter, type WindowState } from './types';
import type { MemoryLimiter } from './memory';
import type { RedisLimiter } from './redis';

export interface ResilientOptions {
  failClosed: boolean;
  logger: Logger;
  /** The Redis URL with its password redacted, for log lines. */
  redisLabel: string;
  commandTimeoutMs: number;
  onBackendChange?: (b: 'redis' | 'memory' | 'fallback') => void;
  /** While Redis is down but the socket claims to be connected, how often a background probe runs the script. */
  probeIntervalMs?: number;
}

/** Reads the script on a key that is never written (failed=false), so a probe exercises the real path. */
const PROBE: readonly LimitQuery[] = [{ key: '_probe', limit: 1, failed: false }];

/**
 * Redis first; in-process windows while Redis is unreachable (or LimiterUnavailableError when failing closed).
 * A Check never waits longer than one command timeout, and only the Check that discovers an outage pays it:
 * while down, commands fail at once when disconnected (no offline queue) and Checks go straight to memory;
 * recovery is noticed by the connection's 'ready' event or, when the socket never dropped (a hung server),
 * by a background probe. Neither needs traffic, so backend() is accurate on an idle replica too.
 */
export class ResilientLimiter implements RateLimiter {
  private up = false;
  private everReady = false;
  private warned = false;
  private closed = false;
  private probing = false;
  private prober: NodeJS.Timeout | undefined;
  private firstConnect: Promise<void> | undefined;
  private readonly probeIntervalMs: number;

  constructor(
    private readonly redis: RedisLimiter,
    private readonly memory: MemoryLimiter,
    private readonly opts: ResilientOptions,
  ) {
    this.probeIntervalMs = opts.probeIntervalMs ?? 500;
    const client = redis.client;
    client.on('ready', () => this.markUp());
    client.on('close', () => this.markDown(new Error('connection closed')));
    // Without an 'error' listener ioredis prints every failed reconnect; markDown logs once per outage.
    client.on('error', (err: Error) => this.markDown(err));
  }

  readonly backend = (): 'redis' | 'fallback' => (this.up ? 'redis' : 'fallback');

  evaluate(queries: readonly LimitQuery[]): Promise<LimitVerdict[]> {
    return this.run((r) => r.evaluate(queries), () => this.memory.evaluateSync(queries));
  }

  /** Read-only, with the same backend choice as evaluate, so explain shows the windows a Check would meet. */
  peek(queries: readonly LimitQuery[]): Promise<WindowState[]> {
    return this.run((r) => r.peek(queries), () => this.memory.peekSync(queries));
  }

  private async run<T>(onRedis: (r: RedisLimiter) => Promise<T>, inMemory: () => T): Promise<T> {
    if (!this.everReady && !this.warned && !this.closed) await this.waitFirstConnect();
    if (this.up) {
      try {
        return await onRedis(this.redis);
      } catch (err) {
        this.onCommandFailure(err);
      }
    }
    if (this.opts.failClosed) throw new LimiterUnavailableError('rate-limit store unavailable');
    return inMemory();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopProber();
    await this.redis.close();
    await this.memory.close();
  }

  private onCommandFailure(err: unknown): void {
    // A connection that stays silent is torn down by ioredis (socketTimeout) and its 'ready' brings us back.
    this.markDown(err instanceof Error ? err : new Error(String(err)));
  }

  private probe(): void {
    if (this.closed || this.up) return this.stopProber();
    if (this.probing || !this.redis.isReady()) return; // disconnected: ioredis reconnects and emits 'ready'
    this.probing = true;
    this.redis.evaluate(PROBE).then(
      () => {
        this.probing = false;
        this.markUp();
      },
      (err: unknown) => {
        this.probing = false;
        if (!this.closed) this.onCommandFailure(err);
      },
    );
  }

  private stopProber(): void {
    if (this.prober) clearInterval(this.prober);
    this.prober = undefined;
  }

  /**
   * Right after start the socket is still connecting; Checks arriving then wait (once, shared) for the first
   * connection or error, at most one command timeout, instead of falling back for a few milliseconds.
   */
  private waitFirstConnect(): Promise<void> {
    if (this.firstConnect) return this.firstConnect;
    const client = this.redis.client;
    this.firstConnect = new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        client.off('ready', done);
        client.off('error', done);
        resolve();
      };
      const timer = setTimeout(done, this.opts.commandTimeoutMs);
      client.once('ready', done);
      client.once('error', done);
    });
    return this.firstConnect;
  }

  private markUp(): void {
    if (this.closed) return;
    this.everReady = true;
    this.stopProber();
    if (this.up) return;
    this.up = true;
    const { logger, redisLabel } = this.opts;
    if (this.warned) logger.info({ redis: redisLabel }, 'rate limiter: Redis reachable again, shared windows restored');
    else logger.info({ redis: redisLabel }, 'rate limiter: using Redis for shared windows');
    this.warned = false;
    // Counts gathered during the outage were local anyway; dropping them frees memory.
    this.memory.clear();
    this.opts.onBackendChange?.('redis');
  }

  private markDown(err: Error): void {
    if (this.closed) return;
    const wasUp = this.up;
    this.up = false;
    if (!this.prober) {
      this.prober = setInterval(() => this.probe(), this.probeIntervalMs);
      this.prober.unref(); // never what keeps the process alive
    }
    if (!this.warned) {
      this.warned = true;
      const mode = this.opts.failClosed ? 'failing closed (503)' : 'using in-process windows';
      // Only the message: ioredis errors carry command arguments, and the URL is pre-redacted.
      this.opts.logger.warn({ redis: this.opts.redisLabel, err: err.message }, `rate limiter: Redis unreachable, ${mode}`);
    } else {
      this.opts.logger.debug({ err: err.message }, 'rate limiter: Redis still unreachable');
    }
    if (wasUp) this.opts.onBackendChange?.('fallback');
  }
}
