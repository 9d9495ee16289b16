/**
 * What the service under test stands on: its own Postgres schema (or, when Postgres is unreachable,
 * an embedded store in a temporary directory) holding one service token, and its own Redis key
 * prefix (or in-process limits). `teardown()` drops all of it and is safe to call more than once.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../src/config/load';
import { clusterKeyPrefix } from '../../src/ratelimit/redis';
import { migrate } from '../../src/store/migrations';
import { openDb } from '../../src/store/open';
import { insertToken } from '../../src/store/tokens';
import { createTestSchema, pgReachable, PG_BASE_URL, type TestSchema } from '../helpers/pg';
import { deleteKeysMatching, redisReachable, SHARED_REDIS_URL } from '../helpers/redis-server';

export const SERVICE_TOKEN_ID = 'bench-service';
export const JWT_SECRET = `bench-${randomBytes(24).toString('hex')}`;
/** As long as a service token's secret (43 characters), so both requests are the same size. */
export const BOOTSTRAP_TOKEN = randomBytes(32).toString('base64url');

export interface Fixtures {
  /** Where runtime files go (logs, frames, profiles); removed by teardown unless BENCH_KEEP is set. */
  readonly dir: string;
  readonly store: 'postgres' | 'embedded';
  readonly redis: boolean;
  /** Env for every service run: store location, JWT secret. */
  readonly baseEnv: Record<string, string>;
  /** Extra env for the bootstrap run (the other runs have no bootstrap token: it costs every Check a digest). */
  readonly bootstrapEnv: Record<string, string>;
  /** Extra env for the limits-on run (Redis with its own prefix when reachable). */
  readonly limitsEnv: Record<string, string>;
  /** The plaintext secret of the service token in the store. */
  readonly serviceToken: string;
  teardown(): Promise<void>;
}

const quiet = pino({ level: 'warn' });

/** Teardowns of fixtures being set up or in use, for a signal handler that fires at any moment. */
export const liveTeardowns = new Set<() => Promise<void>>();

export async function setupFixtures(limits: { ip: number; identity: number }): Promise<Fixtures> {
  const dir = mkdtempSync(join(tmpdir(), 'orcheo-authz-bench-'));
  let schema: TestSchema | undefined;
  let redisPrefix: string | undefined;
  let done = false;
  const teardown = async (): Promise<void> => {
    if (done) return;
    done = true;
    liveTeardowns.delete(teardown);
    const errors: string[] = [];
    if (schema) await schema.drop().catch((e: unknown) => errors.push(`drop schema ${schema!.schema}: ${(e as Error).message}`));
    if (redisPrefix) {
      const pattern = `${clusterKeyPrefix(redisPrefix).replace(/[{}]/g, '\\$&')}*`;
      await deleteKeysMatching(SHARED_REDIS_URL, pattern).catch((e: unknown) => errors.push(`delete redis keys: ${(e as Error).message}`));
    }
    if (!process.env['BENCH_KEEP']) rmSync(dir, { recursive: true, force: true });
    if (errors.length) process.stderr.write(`bench cleanup: ${errors.join('; ')}\n`);
  };
  liveTeardowns.add(teardown);
  try {
    const usePg = await pgReachable();
    if (usePg) schema = await createTestSchema('bench');
    const storeEnv: Record<string, string> = schema ? { ORCHEO_AUTH_DATABASE_URL: schema.url } : { ORCHEO_AUTH_SERVICE_TOKEN_DB_PATH: join(dir, 'store') };

    // Seed the store before the service starts, so the token is in its index from the first call.
    const db = await openDb(loadConfig({ ...storeEnv, ORCHEO_AUTH_GRPC_ADDR: '127.0.0.1:0', ORCHEO_AUTH_HTTP_ADDR: '127.0.0.1:0' }), quiet);
    let serviceToken: string;
    try {
      await migrate(db);
      ({ secret: serviceToken } = await insertToken(db, { id: SERVICE_TOKEN_ID, scopes: ['workflows:read', 'workflows:write'], workspaces: ['*'] }));
    } finally {
      await db.close();
    }

    const redis = await redisReachable();
    if (redis) redisPrefix = `orcheo-authz-bench:${randomBytes(4).toString('hex')}:`;
    const limitsEnv: Record<string, string> = {
      ORCHEO_AUTH_RATE_LIMIT_IP: String(limits.ip),
      ORCHEO_AUTH_RATE_LIMIT_IDENTITY: String(limits.identity),
      ORCHEO_AUTH_RATE_LIMIT_INTERVAL: '60',
      ...(redisPrefix ? { ORCHEO_AUTH_REDIS_URL: SHARED_REDIS_URL, ORCHEO_AUTH_RATE_LIMIT_KEY_PREFIX: redisPrefix } : {}),
    };
    return {
      dir,
      store: schema ? 'postgres' : 'embedded',
      redis,
      baseEnv: { ...storeEnv, ORCHEO_AUTH_JWT_SECRET: JWT_SECRET },
      bootstrapEnv: { ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOTSTRAP_TOKEN },
      limitsEnv,
      serviceToken,
      teardown,
    };
  } catch (err) {
    await teardown();
    throw err;
  }
}

export function describeStore(f: Fixtures): string {
  return f.store === 'postgres' ? `postgres ${PG_BASE_URL.replace(/\/\/[^@]*@/, '//')}` : 'embedded (PGlite)';
}
