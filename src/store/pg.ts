import { Client, Pool } from 'pg';
import type { Logger } from 'pino';
import { classifyStoreError, guarded, isConnectionFailure, queryable, type Db, type Queryable } from './db';

const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5000;

/**
 * Real Postgres through node-postgres. Queries use a small pool with short timeouts so a dead
 * database fails fast instead of stalling callers; LISTEN uses one dedicated client that reconnects
 * with backoff and reports every reconnect (notifications sent while it was down are lost).
 */
export function createPgDb(url: string, logger: Logger): Db {
  const pool = new Pool({
    connectionString: url,
    max: 4,
    connectionTimeoutMillis: 3000,
    idleTimeoutMillis: 30000,
    query_timeout: 5000,
    application_name: 'orcheo-authz',
  });
  // An idle client's error must not crash the process; the next query reports the failure.
  pool.on('error', (err) => logger.warn({ err: err.message }, 'postgres idle client error'));
  const listeners: Array<() => void> = [];
  let closed = false;

  async function listen(channel: string, onMessage: (payload: string) => void, onReconnect?: () => void): Promise<void> {
    let delay = RECONNECT_MIN_MS;
    let first = true;
    let client: Client | undefined;
    const connect = async (): Promise<void> => {
      if (closed) return;
      const c = new Client({ connectionString: url, connectionTimeoutMillis: 3000, application_name: 'orcheo-authz-listen' });
      c.on('error', () => undefined);
      c.on('end', () => {
        if (closed || client !== c) return;
        logger.warn({ channel }, 'postgres notification connection lost; reconnecting');
        setTimeout(() => void retry(), delay).unref();
      });
      c.on('notification', (n) => {
        if (n.channel === channel) onMessage(n.payload ?? '');
      });
      await c.connect();
      await c.query(`LISTEN ${channel}`);
      client = c;
      delay = RECONNECT_MIN_MS;
      if (!first) {
        logger.info({ channel }, 'postgres notification connection restored');
        onReconnect?.();
      }
      first = false;
    };
    const retry = async (): Promise<void> => {
      try {
        await connect();
      } catch (err) {
        if (closed) return;
        delay = Math.min(delay * 2, RECONNECT_MAX_MS);
        logger.debug({ err: (err as Error).message, delay }, 'postgres notification reconnect failed');
        setTimeout(() => void retry(), delay).unref();
      }
    };
    listeners.push(() => {
      const c = client;
      client = undefined;
      void c?.end().catch(() => undefined);
    });
    await connect();
  }

  return {
    kind: 'postgres',
    ...queryable(pool),
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const c = await guarded(() => pool.connect());
      let broken: unknown;
      // A checked-out client reports a lost connection as an 'error' event, which nothing else
      // listens to while it is out of the pool: unheard, it would crash the process. The failing
      // statement rejects as well, so the event only has to mark the client broken.
      const onError = (err: Error): void => void (broken ??= err);
      c.on('error', onError);
      try {
        await guarded(() => c.query('BEGIN'));
        const out = await fn(queryable(c));
        await guarded(() => c.query('COMMIT'));
        return out;
      } catch (err) {
        await c.query('ROLLBACK').catch((e: unknown) => (broken = e));
        // A lost connection also fails the ROLLBACK: report the outage, not the statement's error.
        if (isConnectionFailure(broken)) return classifyStoreError(broken);
        throw err;
      } finally {
        // Left attached on a broken client: its socket may still report errors while it is destroyed.
        if (broken === undefined) c.off('error', onError);
        // A client whose connection broke must not go back to the pool.
        c.release(broken instanceof Error ? broken : undefined);
      }
    },
    listen,
    async close(): Promise<void> {
      closed = true;
      for (const stop of listeners) stop();
      await pool.end();
    },
  };
}
