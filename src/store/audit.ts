import type { Logger } from 'pino';
import { PeriodicFlush } from './periodic';
import type { Db, Queryable } from './db';

/**
 * Event names in `auth_audit_events.event`:
 * - `token.created`, `token.rotated`, `token.revoked`: one row per operation, written in the same
 *   transaction as the change (actor, client IP, user agent, reason, details).
 * - `auth.failure` (reason = deny code, token_id when the identity was known), `token.used`
 *   (service tokens), `bootstrap.used`, `bootstrap.rejected`, `bootstrap.configured`: aggregated
 *   counters, one row per key per flush window with `count`, so a failure storm costs one small
 *   INSERT every few seconds, never a row per request.
 */
/** Every event the trail records (the CLI validates `--event` against this list). */
export const AUDIT_EVENT_NAMES = [
  'token.created',
  'token.rotated',
  'token.revoked',
  'auth.failure',
  'token.used',
  'bootstrap.used',
  'bootstrap.rejected',
  'bootstrap.configured',
] as const;

export type AuditEventName = (typeof AUDIT_EVENT_NAMES)[number];

export interface AuditEvent {
  readonly event: AuditEventName;
  readonly tokenId?: string | undefined;
  readonly actor?: string | undefined;
  readonly clientIp?: string | undefined;
  readonly userAgent?: string | undefined;
  readonly reason?: string | undefined;
  readonly count?: number | undefined;
  readonly details?: Record<string, unknown> | undefined;
  /** Epoch ms; defaults to now(). */
  readonly at?: number | undefined;
}

export interface AuditRow {
  readonly id: number;
  readonly occurredAt: number;
  readonly event: string;
  readonly tokenId?: string | undefined;
  readonly actor?: string | undefined;
  readonly clientIp?: string | undefined;
  readonly userAgent?: string | undefined;
  readonly reason?: string | undefined;
  readonly count: number;
  readonly details?: Record<string, unknown> | undefined;
}

const clip = (s: string | undefined, n: number): string | null => (s === undefined ? null : s.length > n ? s.slice(0, n) : s);

/** Inserts events in one statement (inside the caller's transaction when given one). */
export async function insertAuditEvents(q: Queryable, events: readonly AuditEvent[]): Promise<void> {
  if (events.length === 0) return;
  const now = Date.now();
  await q.query(
    `INSERT INTO auth_audit_events (occurred_at, event, token_id, actor, client_ip, user_agent, reason, count, details)
     SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[], $9::jsonb[])`,
    [
      events.map((e) => new Date(e.at ?? now)),
      events.map((e) => e.event),
      events.map((e) => clip(e.tokenId, 200)),
      events.map((e) => clip(e.actor, 200)),
      events.map((e) => clip(e.clientIp, 100)),
      events.map((e) => clip(e.userAgent, 512)),
      events.map((e) => clip(e.reason, 1000)),
      events.map((e) => Math.max(1, Math.min(2 ** 31 - 1, Math.floor(e.count ?? 1)))),
      events.map((e) => (e.details === undefined ? null : JSON.stringify(e.details))),
    ],
  );
}

export interface AuditQuery {
  /** A token id: its events and those of its rotated predecessors (`id~rN`). */
  readonly tokenId?: string | undefined;
  readonly event?: string | undefined;
  readonly limit?: number | undefined;
  /** Only events with a smaller row id (paging backwards). */
  readonly beforeId?: number | undefined;
}

/** Newest first. */
export async function listAuditEvents(q: Queryable, f: AuditQuery = {}): Promise<AuditRow[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (f.tokenId !== undefined) {
    params.push(f.tokenId, `${f.tokenId}~r`);
    where.push(`(token_id = $${params.length - 1} OR left(token_id, length($${params.length})) = $${params.length})`);
  }
  if (f.event !== undefined) {
    params.push(f.event);
    where.push(`event = $${params.length}`);
  }
  if (f.beforeId !== undefined) {
    params.push(f.beforeId);
    where.push(`id < $${params.length}`);
  }
  params.push(Math.max(1, Math.min(1000, f.limit ?? 100)));
  const rows = await q.query<Record<string, unknown>>(
    `SELECT id, occurred_at, event, token_id, actor, client_ip, user_agent, reason, count, details
       FROM auth_audit_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY id DESC LIMIT $${params.length}`,
    params,
  );
  const opt = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : String(v));
  return rows.map((r) => ({
    id: Number(r.id),
    occurredAt: new Date(r.occurred_at as string).getTime(),
    event: String(r.event),
    tokenId: opt(r.token_id),
    actor: opt(r.actor),
    clientIp: opt(r.client_ip),
    userAgent: opt(r.user_agent),
    reason: opt(r.reason),
    count: Number(r.count),
    details: (typeof r.details === 'string' ? JSON.parse(r.details) : (r.details ?? undefined)) as Record<string, unknown> | undefined,
  }));
}

interface Counter {
  event: AuditEventName;
  tokenId: string | undefined;
  reason: string | undefined;
  n: number;
  first: number;
  last: number;
}

/** Past this many distinct keys in one window, further keys fold into one overflow row per event. */
const MAX_KEYS = 5000;

/**
 * Batched audit counters: `count` (fed by the app's outcome observer) only bumps an in-memory
 * counter; `flush` writes one row per key with its count every `intervalMs`, and at
 * `stop`. Keys are bounded (event × deny code × known token id, capped at MAX_KEYS), so memory and
 * rows stay bounded under a storm of random tokens. A failed flush merges its counts back.
 */
export class AuditRecorder {
  private pending = new Map<string, Counter>();
  /** The last key counted and its counter, valid while `batch` is still the pending map. */
  private lastHit: { event: AuditEventName; tokenId: string | undefined; reason: string | undefined; c: Counter; batch: Map<string, Counter> } | undefined;
  private readonly periodic: PeriodicFlush;
  private flushing: Promise<void> | undefined;

  constructor(private readonly db: Db, private readonly logger: Logger, intervalMs = 5000, private readonly now: () => number = Date.now) {
    this.periodic = new PeriodicFlush(() => this.flush(), intervalMs);
  }

  count(event: AuditEventName, tokenId?: string, reason?: string, n = 1): void {
    const at = this.now();
    // Most calls repeat the previous key (one service token's token.used): skip building and hashing it.
    const h = this.lastHit;
    if (h && h.batch === this.pending && h.event === event && h.tokenId === tokenId && h.reason === reason) {
      h.c.n += n;
      h.c.last = at;
      return;
    }
    const askedTokenId = tokenId;
    const askedReason = reason;
    let key = `${event}\u0000${tokenId ?? ''}\u0000${reason ?? ''}`;
    let c = this.pending.get(key);
    if (!c && this.pending.size >= MAX_KEYS) {
      key = `${event}\u0000\u0000overflow`;
      c = this.pending.get(key);
      tokenId = undefined;
      reason = 'overflow';
    }
    if (c) {
      c.n += n;
      c.last = at;
    } else {
      this.pending.set(key, (c = { event, tokenId, reason, n, first: at, last: at }));
    }
    // Remembered under the key as asked, so an overflowed key keeps folding into the overflow row.
    this.lastHit = { event, tokenId: askedTokenId, reason: askedReason, c, batch: this.pending };
  }

  flush(): Promise<void> {
    // One flush at a time: a concurrent caller waits for the running one, then flushes the rest.
    const run = async (): Promise<void> => {
      if (this.pending.size === 0) return;
      const batch = this.pending;
      this.pending = new Map();
      const events: AuditEvent[] = [...batch.values()].map((c) => ({
        event: c.event,
        tokenId: c.tokenId,
        reason: c.reason,
        count: c.n,
        at: c.last,
        details: { aggregated: true, first_at: new Date(c.first).toISOString(), last_at: new Date(c.last).toISOString() },
      }));
      try {
        await insertAuditEvents(this.db, events);
      } catch (err) {
        for (const [k, c] of batch) {
          const cur = this.pending.get(k);
          if (cur) {
            cur.n += c.n;
            cur.first = Math.min(cur.first, c.first);
          } else this.pending.set(k, c);
        }
        this.logger.warn({ err: (err as Error).message, keys: batch.size }, 'audit counter flush failed; will retry');
      }
    };
    const p = (this.flushing ?? Promise.resolve()).then(run);
    this.flushing = p;
    void p.finally(() => {
      if (this.flushing === p) this.flushing = undefined;
    });
    return p;
  }

  start(): void {
    this.periodic.start();
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }
}
