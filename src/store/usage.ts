import type { Logger } from 'pino';
import type { Db } from './db';
import { PeriodicFlush } from './periodic';

/**
 * Token use counted in memory and written in one statement every few seconds, so `last_used_at` and
 * `use_count` cost no query per request. Counts survive a failed flush (merged back) and the last
 * flush runs at shutdown.
 */
export class UsageRecorder {
  private pending = new Map<string, { n: number; last: number }>();
  private readonly periodic: PeriodicFlush;

  constructor(private readonly db: Db, private readonly logger: Logger, intervalMs = 5000) {
    this.periodic = new PeriodicFlush(() => this.flush(), intervalMs);
  }

  record(tokenId: string, atMs: number): void {
    const e = this.pending.get(tokenId);
    if (e) {
      e.n += 1;
      if (atMs > e.last) e.last = atMs;
    } else {
      this.pending.set(tokenId, { n: 1, last: atMs });
    }
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    const ids = [...batch.keys()];
    try {
      await this.db.query(
        `UPDATE service_tokens t
            SET use_count = t.use_count + v.n,
                last_used_at = GREATEST(t.last_used_at, v.last)
           FROM unnest($1::text[], $2::int[], $3::timestamptz[]) AS v(id, n, last)
          WHERE t.id = v.id`,
        [ids, ids.map((id) => batch.get(id)!.n), ids.map((id) => new Date(batch.get(id)!.last))],
      );
    } catch (err) {
      for (const [id, e] of batch) {
        const cur = this.pending.get(id);
        this.pending.set(id, cur ? { n: cur.n + e.n, last: Math.max(cur.last, e.last) } : e);
      }
      this.logger.warn({ err: (err as Error).message, tokens: batch.size }, 'token usage flush failed; will retry');
    }
  }

  start(): void {
    this.periodic.start();
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }
}
