import type { Logger } from 'pino';
import type { Config } from '../config/types';
import { redactUrl } from '../config/parse';
import type { Db } from './db';

/** Which store, named by the variable that chose it, without a password: for start-up errors. */
export function describeStore(cfg: Config): string {
  return cfg.databaseUrl
    ? `ORCHEO_AUTH_DATABASE_URL=${redactUrl(cfg.databaseUrl)}`
    : `the embedded store at ${cfg.dbPath} (ORCHEO_AUTH_SERVICE_TOKEN_DB_PATH)`;
}

/** Postgres when ORCHEO_AUTH_DATABASE_URL is set, else the embedded store under the DB path. */
export async function openDb(cfg: Config, logger: Logger): Promise<Db> {
  if (cfg.databaseUrl) {
    logger.debug({ url: redactUrl(cfg.databaseUrl) }, 'using postgres');
    // Each driver loads only when chosen: pg costs ~70 ms of start-up (it builds a fetch Response to
    // detect Cloudflare Workers), PGlite its WASM build.
    return (await import('./pg')).createPgDb(cfg.databaseUrl, logger);
  }
  logger.info({ path: cfg.dbPath }, 'using the embedded token store (set ORCHEO_AUTH_DATABASE_URL for Postgres)');
  return (await import('./pglite')).createPgliteDb(cfg.dbPath, logger);
}
