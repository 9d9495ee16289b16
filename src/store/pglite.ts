import { mkdirSync } from 'node:fs';
import type { Logger } from 'pino';
import { guarded, queryable, type Db, type Queryable } from './db';

/**
 * Embedded Postgres (PGlite) through its in-process API, not pglite-socket: over a socket every
 * connection shares one session, so LISTEN/NOTIFY would not cross connections and named prepared
 * statements would collide. PGlite is single-threaded, so transactions are serialised by it.
 */
export async function createPgliteDb(dataDir: string, logger: Logger): Promise<Db> {
  const { PGlite } = await import('@electric-sql/pglite');
  if (dataDir !== 'memory://') mkdirSync(dataDir, { recursive: true });
  const started = Date.now();
  const db = await PGlite.create(dataDir);
  logger.debug({ ms: Date.now() - started }, 'embedded postgres ready');
  type Session = { query: (sql: string, params?: unknown[]) => Promise<{ rows: unknown[] }>; exec: (sql: string) => Promise<unknown> };
  const wrap = (q: Session): Queryable => queryable(q, (sql) => q.exec(sql));
  const unlisteners: Array<() => Promise<void>> = [];
  return {
    kind: 'embedded',
    ...wrap(db),
    transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      return guarded(() => db.transaction((tx) => fn(wrap(tx))));
    },
    async listen(channel: string, onMessage: (payload: string) => void): Promise<void> {
      // In-process: the connection can never drop, so there is no reconnect to report.
      unlisteners.push(await db.listen(channel, onMessage));
    },
    async close(): Promise<void> {
      for (const u of unlisteners) await u().catch(() => undefined);
      await db.close();
    },
  };
}
