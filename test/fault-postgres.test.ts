/**
 * Postgres faults end to end: the service reaches Postgres only through a TCP proxy the test cuts,
 * slows and restores; tokens are written directly to Postgres (not through the proxy), as another
 * replica or the CLI would while this replica is partitioned.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { Client } from 'pg';
import type { Queryable } from '../src/store/db';
import { insertToken } from '../src/store/tokens';
import { startTestApp, type TestApp } from './helpers/app';
import { deniedBody, deniedHeaders, deniedStatus, okHeaders, type CheckResult } from './helpers/grpc-client';
import { createTestSchema, pgReachable, PG_SKIP_REASON, type TestSchema } from './helpers/pg';
import { startTcpProxy, viaProxy, type TcpProxy } from './helpers/tcp-proxy';
import { pollUntil } from './helpers/wait';

const UNKNOWN = 'q7bX3kP0vN9mZ2rT5wY8aC1dF4gH6jL0sU3eI7oR2nB'; // service-token shaped, in no store
/**
 * Index timers for this file: a slow store's sync (a few round trips of SLOW_MS each) must stay well
 * inside the staleness bound, while the cut phase waits for the bound once.
 */
const POLL_MS = 200;
const STALE_MS = 3000;
const SLOW_MS = 100;
const UNKNOWN_JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';

function queryable(c: Client): Queryable {
  return {
    query: async <T>(sql: string, params?: readonly unknown[]) => (await c.query(sql, params as unknown[])).rows as T[],
    exec: async (sql: string) => void (await c.query(sql)),
  };
}

describe('Postgres down, slow and back (through a TCP proxy)', async () => {
  const reachable = await pgReachable();
  const skip = !reachable && PG_SKIP_REASON;
  let schema: TestSchema;
  let proxy: TcpProxy;
  let t: TestApp | undefined;
  let direct: Client;
  const secrets: Record<string, string> = {};
  /** What the service decided, per token id / deny code: the ground truth for usage and audit. */
  const allowed: Record<string, number> = {};
  const denied: Record<string, number> = {};
  let maxLatencyMs = 0;

  const check = async (token: string, path = '/api/workflows'): Promise<CheckResult> => {
    const t0 = performance.now();
    const r = await t!.client.check({ path, headers: { authorization: `Bearer ${token}` } });
    maxLatencyMs = Math.max(maxLatencyMs, performance.now() - t0);
    if (r.ok_response) {
      const id = okHeaders(r)['x-orcheo-subject']!;
      allowed[id] = (allowed[id] ?? 0) + 1;
    } else {
      const code = deniedBody(r).code;
      denied[code] = (denied[code] ?? 0) + 1;
    }
    return r;
  };
  const expectAllowed = (r: CheckResult, id: string): void => {
    assert.ok(r.ok_response, `expected ${id} to be allowed, got ${r.denied_response?.body}`);
    assert.equal(okHeaders(r)['x-orcheo-subject'], id);
  };
  const mint = async (id: string): Promise<void> => {
    const { secret } = await insertToken(queryable(direct), { id, scopes: ['workflows:read'], workspaces: ['*'] });
    secrets[id] = secret;
  };

  before(async () => {
    if (!reachable) return;
    schema = await createTestSchema('fault_pg');
    direct = new Client({ connectionString: schema.url });
    await direct.connect();
    proxy = await startTcpProxy({ port: Number(new URL(schema.url).port || 5432), host: new URL(schema.url).hostname });
    t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_DATABASE_URL: viaProxy(schema.url, proxy) }, 'pg', schema, {
      // The production flush period: a flush in flight when the proxy cuts can commit while its
      // client sees an error and merges the counts back (counted twice), a window short periods widen.
      intervals: { indexPollMs: POLL_MS, staleAfterMs: STALE_MS, flushMs: 5000 },
    });
    await mint('known');
    // No NOTIFY from a direct insert: the index's poll must pick it up.
    const until = Date.now() + 10_000;
    while (!(await check(secrets.known!)).ok_response) {
      assert.ok(Date.now() < until, 'token written to Postgres never reached the index');
      await sleep(100);
    }
  });

  after(async () => {
    await t?.stop().catch(() => undefined);
    await direct?.end().catch(() => undefined);
    await proxy?.close();
    await schema?.drop();
  });

  test('baseline through the proxy: stored token allowed, unknown token 401', { skip }, async () => {
    assert.ok(proxy.accepted() >= 2, 'the service connects through the proxy (pool + LISTEN)');
    expectAllowed(await check(secrets.known!), 'known');
    const r = await check(UNKNOWN);
    assert.equal(deniedStatus(r), 401);
    assert.equal(deniedBody(r).code, 'auth.invalid_token');
  });

  test('slow Postgres: Checks keep being decided from the index, and a slow store is not a stale index', { skip }, async (tc) => {
    proxy.delay(SLOW_MS);
    maxLatencyMs = 0;
    // Several staleness bounds' worth of polls, each a few slow round trips.
    const syncsBefore = proxy.accepted();
    const until = Date.now() + 2 * STALE_MS;
    while (Date.now() < until) {
      expectAllowed(await check(secrets.known!), 'known');
      assert.equal(deniedBody(await check(UNKNOWN)).code, 'auth.invalid_token', 'a slow store is not a stale index');
      await sleep(50);
    }
    assert.ok(t!.app.index.fresh, 'the index kept syncing through the slow store');
    // That a Check never queries the store is counted, not timed, in hotpath.test.ts.
    tc.diagnostic(`max Check latency with ${SLOW_MS} ms per packet: ${maxLatencyMs.toFixed(1)} ms; proxy connections ${syncsBefore} -> ${proxy.accepted()}`);
    proxy.restore();
  });

  let cutAt = 0;
  test('Postgres cut: indexed tokens still allowed; unknown tokens 503 auth.backend_unavailable once the index is stale', { skip }, async (tc) => {
    // Fresh first: the slow phase may have left the last sync older than one poll.
    await pollUntil('index fresh before the cut', () => t!.app.index.staleMs < POLL_MS, { everyMs: 20 });
    proxy.cut();
    cutAt = Date.now();
    maxLatencyMs = 0;
    expectAllowed(await check(secrets.known!), 'known');
    // A token written elsewhere while this replica cannot see the store.
    await mint('late');

    let staleAfterMs: number | undefined;
    let last: CheckResult | undefined;
    while (Date.now() - cutAt < 10 * STALE_MS) {
      expectAllowed(await check(secrets.known!), 'known');
      last = await check(UNKNOWN);
      const code = deniedBody(last).code;
      if (code === 'auth.backend_unavailable') {
        staleAfterMs = Date.now() - cutAt;
        break;
      }
      // Before the index goes stale, "not found" is still trusted.
      assert.equal(code, 'auth.invalid_token');
      await sleep(250);
    }
    assert.ok(staleAfterMs !== undefined, `unknown token never got a 503 within ${10 * STALE_MS} ms of the cut`);
    tc.diagnostic(`unknown token answered 503 ${staleAfterMs} ms after the cut (bound ${STALE_MS} ms, poll ${POLL_MS} ms)`);
    // The last good sync was at most one poll before the cut: a slow machine can only delay the 503.
    assert.ok(staleAfterMs! >= STALE_MS - POLL_MS, `503 after ${staleAfterMs} ms, before the staleness bound`);
    assert.equal(deniedStatus(last!), 503);
    assert.equal(last!.status.code, 14, 'gRPC UNAVAILABLE in CheckResponse.status');
    assert.ok(Number(deniedHeaders(last!)['retry-after']) >= 1, 'retry-after on a 503');
    assert.equal(deniedBody(last!).message, 'Authentication backend is temporarily unavailable');

    // Still answered while stale: the indexed token, and a JWT-shaped string (never a service token).
    expectAllowed(await check(secrets.known!), 'known');
    assert.equal(deniedBody(await check(secrets.late!)).code, 'auth.backend_unavailable', 'a token created during the outage is not refused as invalid');
    assert.equal(deniedBody(await check(UNKNOWN_JWT)).code, 'auth.invalid_token');
    assert.ok(proxy.refused() > 0, 'the service kept trying to reach Postgres');
    tc.diagnostic(`max Check latency during the outage: ${maxLatencyMs.toFixed(1)} ms`);
  });

  test('restore: reconnects and resyncs; the token created during the outage becomes usable', { skip }, async (tc) => {
    assert.ok(cutAt > 0, 'outage phase ran');
    proxy.restore();
    const restoredAt = Date.now();
    // Two things recover, in either order: the change feed may deliver `late` before the resync has
    // marked the index fresh (until then an unknown token is still a 503). Wait for both.
    let r = await check(secrets.late!);
    let unknown = deniedBody(await check(UNKNOWN)).code;
    while ((!r.ok_response || unknown !== 'auth.invalid_token') && Date.now() - restoredAt < 10 * STALE_MS) {
      await sleep(100);
      r = await check(secrets.late!);
      unknown = deniedBody(await check(UNKNOWN)).code;
    }
    const tookMs = Date.now() - restoredAt;
    tc.diagnostic(`token created during the outage usable and the index fresh ${tookMs} ms after recovery`);
    expectAllowed(r, 'late');
    assert.equal(unknown, 'auth.invalid_token', 'fresh index: unknown is invalid again');
    expectAllowed(await check(secrets.known!), 'known');
  });

  test('usage and audit counters kept through the outage are written after recovery, none lost or doubled', { skip }, async (tc) => {
    const useCounts = async (): Promise<Record<string, number>> =>
      Object.fromEntries((await direct.query(`SELECT id, use_count FROM service_tokens`)).rows.map((row) => [row.id, Number(row.use_count)]));
    // Written by the periodic flush after recovery, before any shutdown flush.
    const until = Date.now() + 10 * STALE_MS;
    let counts = await useCounts();
    while (counts.known !== allowed.known && Date.now() < until) {
      await sleep(250);
      counts = await useCounts();
    }
    tc.diagnostic(`allowed: ${JSON.stringify(allowed)}; use_count: ${JSON.stringify(counts)}; denied: ${JSON.stringify(denied)}`);
    assert.ok(allowed.known! > 20, 'many allowed requests across the phases');
    assert.equal(counts.known, allowed.known, 'use_count of a token used before, during and after the outage');

    // The shutdown flush writes the rest; nothing may be counted twice.
    await t!.stop();
    t = undefined;
    counts = await useCounts();
    assert.equal(counts.known, allowed.known);
    assert.equal(counts.late, allowed.late);
    const audit = (await direct.query(`SELECT event, token_id, reason, sum(count)::int AS n FROM auth_audit_events WHERE event IN ('auth.failure', 'token.used') GROUP BY 1, 2, 3`)).rows as Array<{ event: string; token_id: string | null; reason: string | null; n: number }>;
    const failures: Record<string, number> = {};
    const used: Record<string, number> = {};
    for (const a of audit) {
      if (a.event === 'auth.failure') failures[a.reason!] = (failures[a.reason!] ?? 0) + a.n;
      else used[a.token_id!] = (used[a.token_id!] ?? 0) + a.n;
    }
    assert.deepEqual(failures, denied, 'auth.failure audit counts by code');
    assert.deepEqual(used, allowed, 'token.used audit counts by token');
  });
});
