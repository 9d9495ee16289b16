import type { Logger } from 'pino';
import type { Db, Queryable } from './db';
import { rowToRecord, TOKEN_COLUMNS } from './records';
import type { TokenIndex } from './token-index';

/**
 * NOTIFY channels are database-wide while every deployment (and every test) lives in its own
 * schema, so the channel is derived from the schema name: `orcheo_authz_tokens_<16 hex of
 * sha256(schema)>`. The payload names the schema again and receivers drop anything else.
 */
const CHANNEL_SQL = `'orcheo_authz_tokens_' || substr(encode(sha256(convert_to(current_schema(), 'UTF8')), 'hex'), 1, 16)`;

const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 5000;

export interface TokenChangeMessage {
  readonly schema: string;
  readonly ids: readonly string[];
  /** Absent: token rows. `assertion_keys`: the signing key set changed (ids empty). */
  readonly kind?: 'assertion_keys';
  /** Database clock at the write, epoch ms: the receiver's lag (exported as a metric). */
  readonly at?: number;
}

/**
 * Announces a token change to every replica. Call inside the write's transaction: Postgres delivers
 * the notification on commit, and never for a rolled-back write. The payload carries ids only.
 */
export async function notifyTokenChange(tx: Queryable, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await tx.query(`SELECT pg_notify(${CHANNEL_SQL}, json_build_object('schema', current_schema(), 'ids', $1::text[], 'at', (extract(epoch FROM clock_timestamp()) * 1000)::bigint)::text)`, [[...ids]]);
}

/** Announces a change of the assertion signing keys on the same channel (inside the write's transaction). */
export async function notifyAssertionKeyChange(tx: Queryable): Promise<void> {
  await tx.query(`SELECT pg_notify(${CHANNEL_SQL}, json_build_object('schema', current_schema(), 'ids', '{}'::text[], 'kind', 'assertion_keys')::text)`);
}

/**
 * Keeps this instance's token index in step with writes made anywhere: LISTEN on the schema's
 * channel, re-read the named tokens on each notification (applied synchronously, so a rotation's
 * two rows land together), and resync everything after the listening connection reconnects,
 * since notifications sent while it was down are gone. The index's 1 s poll stays as a safety net.
 */
export class TokenChangeFeed {
  private schema: string | undefined;
  private channel: string | undefined;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  private delay: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  /** Notifications received for this schema (for tests and metrics). */
  received = 0;
  /** Milliseconds from the write to this instance's index update, for the last notification. */
  lastLagMs: number | undefined;
  private readonly keyListeners: Array<() => void> = [];

  constructor(
    private readonly db: Db,
    private readonly index: TokenIndex,
    private readonly logger: Logger,
    opts: { retryMinMs?: number | undefined; retryMaxMs?: number | undefined } = {},
  ) {
    this.retryMinMs = opts.retryMinMs ?? RETRY_MIN_MS;
    this.retryMaxMs = opts.retryMaxMs ?? RETRY_MAX_MS;
    this.delay = this.retryMinMs;
  }

  /** Called on an assertion key notification and after a reconnect (notifications may have been missed). */
  onAssertionKeys(listener: () => void): void {
    this.keyListeners.push(listener);
  }

  get channelName(): string | undefined {
    return this.channel;
  }

  /** Subscribes; never throws. When the database is down it keeps retrying in the background. */
  async start(): Promise<void> {
    try {
      await this.subscribe();
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'cannot listen for token changes yet; retrying (the 1 s poll covers the gap)');
      this.scheduleRetry();
    }
  }

  private async subscribe(): Promise<void> {
    if (this.closed) return;
    if (!this.channel) {
      const rows = await this.db.query<{ schema: string | null; channel: string | null }>(`SELECT current_schema() AS schema, ${CHANNEL_SQL} AS channel`);
      if (!rows[0]?.schema || !rows[0].channel) throw new Error('no current schema (does the search_path schema exist?)');
      this.schema = rows[0].schema;
      this.channel = rows[0].channel;
    }
    await this.db.listen(this.channel, (payload) => this.onMessage(payload), () => this.onReconnect());
    this.logger.debug({ channel: this.channel }, 'listening for token changes');
  }

  private scheduleRetry(): void {
    if (this.closed) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.subscribe().then(
        () => {
          this.delay = this.retryMinMs;
          this.logger.info('listening for token changes');
          // Anything written before the subscription was missed.
          this.onReconnect();
        },
        (err: unknown) => {
          this.delay = Math.min(this.delay * 2, this.retryMaxMs);
          this.logger.debug({ err: (err as Error).message }, 'token change subscription failed; retrying');
          this.scheduleRetry();
        },
      );
    }, this.delay);
    this.retry.unref();
  }

  private onMessage(payload: string): void {
    let msg: TokenChangeMessage;
    try {
      msg = JSON.parse(payload) as TokenChangeMessage;
    } catch {
      return;
    }
    if (!msg || msg.schema !== this.schema || !Array.isArray(msg.ids)) return;
    if (msg.kind === 'assertion_keys') {
      this.received += 1;
      for (const l of this.keyListeners) l();
      return;
    }
    const ids = msg.ids.filter((i): i is string => typeof i === 'string');
    if (ids.length === 0) return;
    this.received += 1;
    const at = typeof msg.at === 'number' ? msg.at : undefined;
    void this.refresh(ids).then(() => {
      if (at !== undefined) this.lastLagMs = Math.max(0, Date.now() - at);
    });
  }

  private async refresh(ids: string[]): Promise<void> {
    try {
      const rows = await this.db.query(`SELECT ${TOKEN_COLUMNS} FROM service_tokens WHERE id = ANY($1::text[])`, [ids]);
      // Synchronously, in one tick: no Check can observe half of a rotation.
      for (const row of rows) this.index.apply(rowToRecord(row));
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'token change refresh failed; the poll will retry');
      void this.index.sync();
    }
  }

  private onReconnect(): void {
    for (const l of this.keyListeners) l();
    this.index.resync().catch((err: unknown) => {
      this.logger.warn({ err: (err as Error).message }, 'token index resync after reconnect failed; the poll will retry');
    });
  }

  stop(): void {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
  }
}
