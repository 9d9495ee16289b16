import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readinessBody } from '../src/admin/ops-routes';
import { startTestApp } from './helpers/app';
import { createTestSchema, PG_SKIP_REASON, pgReachable } from './helpers/pg';
import { startTcpProxy, viaProxy } from './helpers/tcp-proxy';

test('the /readyz body: ok, stale with the seconds since the last sync, not_loaded', () => {
  const base = { store: true, jwks: true, draining: false };
  assert.deepEqual(readinessBody({ ...base, storeFresh: true, storeSyncAgeMs: 400 }), { status: 200, body: { status: 'ready', store: 'ok', checks: base } });
  assert.deepEqual(readinessBody({ ...base, storeFresh: false, storeSyncAgeMs: 14_700 }), { status: 200, body: { status: 'ready', store: 'stale', store_stale_seconds: 14, checks: base } });
  const unloaded = { ...base, store: false };
  assert.deepEqual(readinessBody({ ...unloaded, storeFresh: false, storeSyncAgeMs: Infinity }), { status: 503, body: { status: 'not_ready', store: 'not_loaded', checks: unloaded } });
  assert.equal(readinessBody({ ...base, draining: true }).status, 503);
});

test('a store outage after load: /readyz stays 200 and reports the store stale, then ok again', async (t) => {
  if (!(await pgReachable())) return t.skip(PG_SKIP_REASON);
  const schema = await createTestSchema();
  const u = new URL(schema.url);
  const proxy = await startTcpProxy({ host: u.hostname, port: Number(u.port || 5432) });
  const staleAfterMs = 2000;
  const app = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_DATABASE_URL: viaProxy(schema.url, proxy) }, 'pg', schema, { intervals: { staleAfterMs } });
  t.after(async () => {
    await app.stop();
    await proxy.close();
    await schema.drop();
  });
  const readyz = async () => {
    const res = await fetch(`http://127.0.0.1:${app.app.httpPort}/readyz`);
    return { status: res.status, body: (await res.json()) as { status: string; store: string; store_stale_seconds?: number } };
  };
  const until = async (want: string, ms: number) => {
    const started = Date.now();
    for (;;) {
      const r = await readyz();
      if (r.body.store === want) return { r, waited: Date.now() - started };
      assert.ok(Date.now() - started < ms, `store never became ${want}: ${JSON.stringify(r.body)}`);
      await new Promise((res) => setTimeout(res, 250));
    }
  };
  assert.deepEqual((await readyz()).body.store, 'ok');
  proxy.cut();
  const { r: stale, waited } = await until('stale', 30_000);
  t.diagnostic(`stale reported after ${waited} ms without a sync`);
  assert.equal(stale.status, 200, 'known tokens still work: still ready');
  assert.equal(stale.body.status, 'ready');
  assert.ok(Number.isInteger(stale.body.store_stale_seconds) && stale.body.store_stale_seconds! >= staleAfterMs / 1000, JSON.stringify(stale.body));
  proxy.restore();
  const { r: ok } = await until('ok', 30_000);
  assert.equal(ok.body.store_stale_seconds, undefined);
});
