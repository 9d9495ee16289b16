/**
 * The admin API when the store fails: an outage (a real TCP proxy cut between the service and
 * Postgres) is a 503 `store.unavailable`; any other database error a 500 with a fixed message. Neither
 * leaves a partial write.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, appFor, assertSecurityHeaders, BOOT_ENV, sql } from './helpers/admin-api';
import { startTestApp } from './helpers/app';
import { createTestSchema, PG_SKIP_REASON, pgReachable } from './helpers/pg';
import { startTcpProxy, viaProxy } from './helpers/tcp-proxy';

test('a token store failure is a 503 with retry-after, never a 500 or a partial write', async (t) => {
  if (!(await pgReachable())) return void t.skip(PG_SKIP_REASON);
  // The service reaches Postgres through a proxy the test cuts; the test reads Postgres directly.
  const schema = await createTestSchema('down');
  t.after(() => schema.drop());
  const target = new URL(schema.url);
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  t.after(() => proxy.close());
  const a = await startTestApp({ ...BOOT_ENV, ORCHEO_AUTH_DATABASE_URL: viaProxy(schema.url, proxy) }, 'pg', schema);
  t.after(() => a.stop());
  assert.equal((await api(a, 'POST', '', { body: { id: 'x' } })).status, 201);
  const before = await sql(a, 'SELECT id, secret_hash, revoked_at FROM service_tokens ORDER BY id');
  // Only the rows a write makes in its own transaction: bootstrap.used and the other counters are
  // flushed on a timer and may land at any moment.
  const changes = "SELECT id, event, token_id FROM auth_audit_events WHERE event IN ('token.created', 'token.rotated', 'token.revoked') ORDER BY id";
  const auditBefore = await sql(a, changes);
  assert.equal(auditBefore.length, 1, 'the creation is in the trail');
  proxy.cut();
  for (const [method, path] of [['POST', ''], ['GET', ''], ['GET', '/x'], ['DELETE', '/x'], ['POST', '/x/rotate'], ['GET', '/audit']] as const) {
    const r = await api(a, method, path, { body: method === 'GET' ? undefined : {} });
    assert.equal(r.status, 503, `${method} ${path}: ${r.text}`);
    assert.equal(r.body.code, 'store.unavailable');
    assert.equal(r.body.message, 'Token store is temporarily unavailable');
    assert.equal(r.headers.get('retry-after'), '5');
    assertSecurityHeaders(r.headers);
  }
  assert.deepEqual(await sql(a, 'SELECT id, secret_hash, revoked_at FROM service_tokens ORDER BY id'), before, 'no write went through');
  assert.deepEqual(await sql(a, changes), auditBefore, 'no audit row of a write went through');
  proxy.restore();
  // The pool drops the broken connections and opens new ones on demand.
  let last = 0;
  for (let i = 0; i < 100 && last !== 200; i++) {
    if (i > 0) await new Promise((res) => setTimeout(res, 50));
    last = (await api(a, 'GET', '')).status;
  }
  assert.equal(last, 200);
});

test('a database error that is not an outage is a 500 http.internal with a fixed message, and the write is undone', async (t) => {
  const a = await appFor(t);
  if (!a) return;
  // The audit insert fails after the token insert: the one transaction must leave neither.
  await sql(a, "ALTER TABLE auth_audit_events ADD CONSTRAINT no_creations CHECK (event <> 'token.created')");
  const r = await api(a, 'POST', '', { body: { id: 'half' } });
  assert.equal(r.status, 500, r.text);
  assert.deepEqual(r.body, { message: 'Internal error', code: 'http.internal' });
  assert.ok(!r.text.includes('no_creations'), 'the driver message stays in the log');
  assert.deepEqual(await sql(a, "SELECT id FROM service_tokens WHERE id = 'half'"), []);
  assert.equal((await api(a, 'GET', '/half')).status, 404);
  assert.equal(a.app.index.get('half'), undefined, 'the index never saw the rolled-back row');
});
