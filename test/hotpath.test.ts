import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Redis from 'ioredis';
import { startApp } from '../src/app';
import { adminRoutes } from '../src/admin/routes';
import { loadConfig } from '../src/config/load';
import { createLogger } from '../src/log';
import type { Db } from '../src/store/db';
import { createPgDb } from '../src/store/pg';
import { insertToken } from '../src/store/tokens';
import { AuthzClient, okHeaders } from './helpers/grpc-client';
import { createTestSchema, PG_SKIP_REASON, pgReachable } from './helpers/pg';
import { deleteKeysMatching, RedisServerProcess, redisReachable, SHARED_REDIS_URL, testPrefix } from './helpers/redis-server';

/** Background statements that run on timers, never per request. */
// The index pull also reads the database clock and reconciles the row count / id set.
const PERIODIC = [/updated_at > \$1/, /SELECT clock_timestamp\(\) AS db_now/, /SELECT count\(\*\)::int AS n FROM service_tokens/, /^SELECT id FROM service_tokens$/, /SET use_count = t\.use_count/, /INSERT INTO auth_audit_events/i, /FROM service_tokens WHERE id = ANY/];

function counting(db: Db, seen: string[]): Db {
  return { ...db, query: (sql, params) => (seen.push(sql), db.query(sql, params)), transaction: (fn) => db.transaction(fn) } as Db;
}

async function redisCalls(r: Redis): Promise<Record<string, number>> {
  const info = await r.info('commandstats');
  const out: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

const sum = (o: Record<string, number>, skip: string[]) => Object.entries(o).filter(([k]) => !skip.includes(k)).reduce((a, [, v]) => a + v, 0);

describe('hot path: zero backend round trips in steady state', async () => {
  const pg = await pgReachable();
  const redis = await redisReachable();
  if (!redis && process.env.CI_REQUIRE_BACKENDS) throw new Error('CI_REQUIRE_BACKENDS is set but Redis is unreachable');

  for (const limits of [false, true]) {
    test(`allowed service-token Checks: no Postgres query; Redis ${limits ? 'one EVALSHA per Check' : 'untouched'}`, { skip: (!pg && PG_SKIP_REASON) || (!redis && 'Redis not reachable at 127.0.0.1:6379') }, async () => {
      const schema = await createTestSchema('hot');
      const prefix = testPrefix('hot');
      // A private Redis, so commandstats count this service's commands only, not other tests'.
      const own = RedisServerProcess.available() ? await RedisServerProcess.start() : undefined;
      const redisUrl = own?.url ?? SHARED_REDIS_URL;
      const seen: string[] = [];
      const logger = createLogger('warn', { write: () => undefined });
      const cfg = loadConfig({
        ORCHEO_AUTH_GRPC_ADDR: '127.0.0.1:0',
        ORCHEO_AUTH_HTTP_ADDR: '127.0.0.1:0', ORCHEO_AUTH_HTTP_AUTHZ_ADDR: '127.0.0.1:0',
        ORCHEO_AUTH_MODE: 'required',
        ORCHEO_AUTH_DATABASE_URL: schema.url,
        ORCHEO_AUTH_REDIS_URL: redisUrl,
        ORCHEO_AUTH_RATE_LIMIT_KEY_PREFIX: prefix,
        ...(limits ? { ORCHEO_AUTH_RATE_LIMIT_IP: '100', ORCHEO_AUTH_RATE_LIMIT_IDENTITY: '100' } : {}),
      });
      // The periodic syncs (index poll, usage and audit flush) far apart: how many of them fall inside
      // the 1,000 Checks would depend on the machine's load, and none is needed for the measurement.
      const intervals = { indexPollMs: 600_000, staleAfterMs: 6_000_000, flushMs: 600_000 };
      const app = await startApp(cfg, { logger, db: counting(createPgDb(schema.url, logger), seen), routes: adminRoutes, intervals });
      const client = new AuthzClient(app.grpcPort);
      const r = new Redis(redisUrl);
      try {
        const { record, secret } = await insertToken(app.db, { id: 'hot', scopes: ['workflows:read'], workspaces: ['*'] });
        app.index.apply(record);
        const req = { path: '/api/workflows', headers: { authorization: `Bearer ${secret}` } };
        assert.equal(okHeaders(await client.check(req))['x-orcheo-subject'], 'hot', 'warm-up allowed');
        const N = 1000;
        const before = seen.length;
        const redisBefore = await redisCalls(r);
        for (let i = 0; i < N; i += 50) await Promise.all(Array.from({ length: 50 }, () => client.check(req)));
        const redisAfter = await redisCalls(r);
        const during = seen.slice(before);
        const perRequest = during.filter((sql) => !PERIODIC.some((p) => p.test(sql)));
        assert.deepEqual(perRequest, [], 'a per-request Postgres query');
        // With the periodic syncs out of the window, only the feed's late fetch of the token inserted above may fall in it.
        assert.ok(during.length <= 2, `${during.length} queries for ${N} Checks: ${during.join('; ')}`);
        const skip = ['info', 'ping', 'select', 'client|setinfo', 'client|setname', 'hello', 'script|load'];
        // Commands a Lua script runs are counted too, so with limits on count the script calls: one
        // EVALSHA is one round trip.
        const scripts = (o: Record<string, number>) => (o.evalsha ?? 0) + (o.eval ?? 0);
        const delta = limits ? scripts(redisAfter) - scripts(redisBefore) : sum(redisAfter, skip) - sum(redisBefore, skip);
        // At most one round trip per Check. Fewer is possible on a loaded machine: a command slower
        // than the 100 ms timeout sends the limiter to its in-process fallback for a moment.
        // A shared Redis (no redis-server binary) also counts other processes' scripts: some slack there.
        const slack = own ? 0 : 5;
        if (limits) assert.ok(delta > 0 && delta <= N + slack, `${delta} script calls for ${N} Checks with limits on (expected at most one each)`);
        else assert.ok(delta <= 2, `${delta} Redis commands for ${N} Checks with limits off`);
        console.log(`# ${N} allowed Checks: ${during.length} Postgres queries (periodic only), ${delta} Redis ${limits ? 'round trips (EVALSHA), limits on' : 'commands, limits off'}`);
      } finally {
        client.close();
        r.disconnect();
        await app.stop(1000);
        await schema.drop();
        await deleteKeysMatching(redisUrl, `${prefix}*`);
        await own?.destroy();
      }
    });
  }
});

describe('/metrics, /healthz, /readyz', () => {
  test('decisions, latency, index and cache metrics are exported; nothing secret is', async () => {
    const secret = 'metrics-test-jwt-secret-0123456789abcdef';
    const { startTestApp } = await import('./helpers/app');
    const t = await startTestApp({ ORCHEO_AUTH_JWT_SECRET: secret, ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: 'metrics-bootstrap-0123456789' }, 'auto');
    try {
      await t.client.check({ headers: { authorization: 'Bearer metrics-bootstrap-0123456789' } });
      await t.client.check({});
      const base = `http://127.0.0.1:${t.app.httpPort}`;
      assert.deepEqual(await (await fetch(`${base}/healthz`)).json(), { status: 'ok' });
      const ready = await fetch(`${base}/readyz`);
      assert.equal(ready.status, 200);
      const text = await (await fetch(`${base}/metrics`)).text();
      assert.match(text, /orcheo_authz_checks_total\{decision="allow",code="ok"\} 1/);
      assert.match(text, /orcheo_authz_checks_total\{decision="deny",code="auth.missing_token"\} 1/);
      assert.match(text, /orcheo_authz_check_duration_seconds_count 2/);
      for (const name of ['orcheo_authz_token_index_size', 'orcheo_authz_token_index_staleness_seconds', 'orcheo_authz_jwt_cache_hits_total', 'orcheo_authz_jwks_fetches_total', 'orcheo_authz_store_sync_failures_total', 'orcheo_authz_token_notification_lag_seconds', 'orcheo_authz_process_resident_memory_bytes']) {
        assert.ok(text.includes(name), `missing ${name}`);
      }
      assert.ok(!text.includes(secret) && !text.includes('metrics-bootstrap'), 'a secret in /metrics');
      assert.equal((await fetch(`${base}/nope`)).status, 404);
    } finally {
      await t.stop();
    }
  });
});
