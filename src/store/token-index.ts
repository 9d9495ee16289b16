import type { Logger } from 'pino';
import type { Db } from './db';
import { rowToRecord, TOKEN_COLUMNS, type TokenRecord } from './records';

/** Syncs between full id-set comparisons (the count is compared at every sync). */
const RECONCILE_EVERY = 10;

export interface TokenIndexOptions {
  /** How often changed rows are pulled (the staleness bound without notifications). */
  readonly pollIntervalMs?: number;
  /** Past this age without a successful sync, an unknown token is answered 503, not 401. */
  readonly maxStalenessMs?: number;
  readonly now?: () => number;
}

/**
 * Every token record in memory, keyed by secret hash (≈100 B a token), so Check never queries the
 * database: an unknown token is refused without a round trip and a flood of random tokens never
 * reaches Postgres. Kept in sync by pulling rows whose `updated_at` moved (with an overlap, since a
 * concurrent transaction can commit an older timestamp), and by `apply()` / full `resync()`
 * calls from notifications.
 */
export class TokenIndex {
  private byHash = new Map<string, TokenRecord>();
  private byId = new Map<string, TokenRecord>();
  private watermark = 0;
  private lastSyncAt = 0;
  private loaded = false;
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  /** Failed sync attempts since start (exported as a metric). */
  syncFailures = 0;
  private readonly pollMs: number;
  private readonly maxStaleMs: number;
  private readonly now: () => number;
  /** Database clock minus local clock (ms), measured at each sync: expiry and revocation are DB instants. */
  private offsetMs = 0;
  private pulls = 0;
  private lost = false;
  private readonly changeListeners: Array<(id: string) => void> = [];

  constructor(private readonly db: Db, private readonly logger: Logger, opts: TokenIndexOptions = {}) {
    this.pollMs = opts.pollIntervalMs ?? 1000;
    this.maxStaleMs = opts.maxStalenessMs ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  /** Called with a token id whenever its record changed or disappeared (caches keyed by token drop it). */
  onChange(listener: (id: string) => void): void {
    this.changeListeners.push(listener);
  }

  private changed(id: string): void {
    for (const l of this.changeListeners) l(id);
  }

  get size(): number {
    return this.byId.size;
  }

  /** True once loaded and synced recently enough that "not found" can be trusted. */
  get fresh(): boolean {
    return this.loaded && this.now() - this.lastSyncAt <= this.maxStaleMs;
  }

  /** Milliseconds since the last successful sync (Infinity before the first). */
  get staleMs(): number {
    return this.loaded ? this.now() - this.lastSyncAt : Number.POSITIVE_INFINITY;
  }

  get isLoaded(): boolean {
    return this.loaded;
  }

  /** Milliseconds to add to a local instant to get the database's (revoked_at/expires_at are written on its clock). */
  get clockOffsetMs(): number {
    return this.offsetMs;
  }

  /** The database's clock as this replica best knows it. */
  dbNow(): number {
    return this.now() + this.offsetMs;
  }

  /** Measures the DB clock offset: the midpoint of the round trip stands for the instant read. */
  private async measureClock(): Promise<void> {
    const t0 = this.now();
    const rows = await this.db.query(`SELECT clock_timestamp() AS db_now`);
    const t1 = this.now();
    const dbMs = new Date(rows[0]!.db_now as string | Date).getTime();
    if (Number.isFinite(dbMs)) this.offsetMs = dbMs - (t0 + t1) / 2;
  }

  lookup(secretHash: string): TokenRecord | undefined {
    return this.byHash.get(secretHash);
  }

  get(id: string): TokenRecord | undefined {
    return this.byId.get(id);
  }

  /** Full load; replaces the index atomically. Throws when the database is unreachable. */
  async resync(): Promise<void> {
    const started = this.now();
    await this.measureClock();
    const rows = await this.db.query(`SELECT ${TOKEN_COLUMNS} FROM service_tokens`);
    const byHash = new Map<string, TokenRecord>();
    const byId = new Map<string, TokenRecord>();
    let mark = 0;
    for (const row of rows) {
      const r = rowToRecord(row);
      byHash.set(r.secretHash, r);
      byId.set(r.id, r);
      mark = Math.max(mark, r.updatedAt);
    }
    const prev = this.byId;
    this.byHash = byHash;
    this.byId = byId;
    for (const [id, r] of prev) if (byId.get(id)?.updatedAt !== r.updatedAt) this.changed(id);
    this.watermark = mark;
    this.lastSyncAt = started;
    this.loaded = true;
  }

  /** Applies a record written by this process (or read after a notification) at once. */
  apply(r: TokenRecord): void {
    const prev = this.byId.get(r.id);
    // A read that started before a newer write may land after it: never go back in time.
    if (prev && r.updatedAt < prev.updatedAt) return;
    // Rotation renames the old row (`id` → `id~rN`) and gives `id` a new secret. Rows arrive in any
    // order, so drop the old hash only while it still belongs to this id, not to the renamed row.
    if (prev && prev.secretHash !== r.secretHash && this.byHash.get(prev.secretHash)?.id === r.id) this.byHash.delete(prev.secretHash);
    this.byId.set(r.id, r);
    this.byHash.set(r.secretHash, r);
    this.watermark = Math.max(this.watermark, r.updatedAt);
    if (prev && prev.updatedAt !== r.updatedAt) this.changed(r.id);
  }

  /** Drops a token whose row is gone (deleted by hand): it must stop authenticating. */
  private remove(id: string): void {
    const r = this.byId.get(id);
    if (!r) return;
    this.byId.delete(id);
    if (this.byHash.get(r.secretHash)?.id === id) this.byHash.delete(r.secretHash);
    this.changed(id);
  }

  /**
   * Pulling by `updated_at` never sees a deleted row, so each sync compares the row count with the
   * index, and every few syncs the id sets (a delete plus an insert keeps the count equal).
   */
  private async reconcile(): Promise<void> {
    this.pulls += 1;
    const [c] = await this.db.query(`SELECT count(*)::int AS n FROM service_tokens`);
    if (Number(c?.n) === this.byId.size && this.pulls % RECONCILE_EVERY !== 0) return;
    const ids = new Set((await this.db.query(`SELECT id FROM service_tokens`)).map((row) => String(row.id)));
    for (const id of [...this.byId.keys()]) if (!ids.has(id)) this.remove(id);
  }

  private async pull(): Promise<void> {
    if (!this.loaded) return this.resync();
    const started = this.now();
    // Overlap: now() is the transaction's start, so a long transaction can commit a row older than
    // the watermark. Re-applying a row is idempotent.
    await this.measureClock();
    const since = new Date(this.watermark - 5000);
    const rows = await this.db.query(`SELECT ${TOKEN_COLUMNS} FROM service_tokens WHERE updated_at > $1`, [since]);
    for (const row of rows) this.apply(rowToRecord(row));
    await this.reconcile();
    this.lastSyncAt = started;
  }

  /** One sync step; concurrent callers share it. Never throws: failures are logged and retried. */
  sync(): Promise<void> {
    this.syncing ??= this.pull()
      .then(() => {
        if (!this.lost) return;
        this.lost = false;
        this.logger.info({ failures: this.syncFailures }, 'token index sync recovered');
      })
      .catch((err: unknown) => {
        this.syncFailures += 1;
        // Once per outage, not every poll: the metric and staleness say how long it lasts.
        if (this.lost) return;
        this.lost = true;
        this.logger.warn({ err: (err as Error).message, stale_ms: this.now() - this.lastSyncAt }, 'token index sync failed; serving cached tokens');
      })
      .finally(() => {
        this.syncing = undefined;
      });
    return this.syncing;
  }

  start(): void {
    if (this.timer || this.pollMs <= 0) return;
    this.timer = setInterval(() => void this.sync(), this.pollMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
