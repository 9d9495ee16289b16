import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Client } from 'pg';
import { startTestApp, type TestApp } from './helpers/app';
import { fromCheckRequest, type RawCheckRequest } from '../src/grpc/request';
import { toCheckResponse } from '../src/grpc/response';
import { checkRequest, deniedBody, okHeaders, type CheckResult } from './helpers/grpc-client';
import { createTestSchema, PG_SKIP_REASON, pgReachable } from './helpers/pg';
import { adminRequest } from './helpers/spawn';
import { notifyTokenChange } from '../src/store/notify';
import { percentile, pollUntil } from './helpers/wait';

const BOOT = 'bootstrap-secret-for-tests-0123456789';
const ENV = { ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT, ORCHEO_AUTH_MODE: 'required', LOG_LEVEL: 'info' };

/** Two replicas (separate App instances, pools, listeners and indexes) sharing one schema. */
async function twoReplicas(t: TestContext): Promise<{ a: TestApp; b: TestApp } | undefined> {
  if (!(await pgReachable())) {
    t.skip(PG_SKIP_REASON);
    return undefined;
  }
  const schema = await createTestSchema('prop');
  const a = await startTestApp(ENV, 'pg', schema);
  const b = await startTestApp(ENV, 'pg', schema);
  t.after(async () => {
    await b.stop();
    await a.stop();
    await schema.drop();
  });
  return { a, b };
}

const api = (x: TestApp, method: string, path: string, body?: unknown) => adminRequest(`http://127.0.0.1:${x.app.httpPort}`, method, path, { token: BOOT, body });

/** A Check straight into the replica's pipeline (no gRPC hop: measures the store, not the client). */
const check = async (x: TestApp, token: string): Promise<CheckResult> =>
  toCheckResponse(await x.app.check(fromCheckRequest(checkRequest({ path: '/api/ping', headers: { authorization: `Bearer ${token}` } }) as RawCheckRequest))) as CheckResult;

/** Every event-loop turn until `cond`; the bound is a watchdog (generous), the time a diagnostic. */
const until = async (cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> => (await pollUntil('propagation', cond, { timeoutMs })).ms;

const revoked = async (x: TestApp, secret: string) => deniedBody(await check(x, secret)).code === 'auth.token_revoked';

async function sqlOn(url: string, text: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, params)).rows;
  } finally {
    await c.end();
  }
}

test('a revocation on one replica is enforced by another through NOTIFY alone (poll stopped)', async (t) => {
  const r = await twoReplicas(t);
  if (!r) return;
  const { a, b } = r;
  b.app.index.stop(); // only the notification path remains
  const { secret } = (await api(a, 'POST', '', { id: 'victim', scopes: ['workflows:read'] })).body;
  await until(() => b.app.index.get('victim') !== undefined, 2000);
  assert.ok((await check(b, secret)).ok_response, 'replica B accepts the new token');
  const res = await api(a, 'DELETE', '/victim', { reason: 'compromised' });
  assert.equal(res.status, 200);
  const ms = await until(() => revoked(b, secret), 10_000);
  t.diagnostic(`revocation propagation to the other replica: ${ms.toFixed(1)} ms`);
});

test(`60 revocations alternating between two replicas, each enforced by the other through NOTIFY alone`, async (t) => {
  const r = await twoReplicas(t);
  if (!r) return;
  const { a, b } = r;
  // Without the polls only notifications move the indexes (timing is the bench's business:
  // test/bench/revocation-propagation.ts).
  a.app.index.stop();
  b.app.index.stop();
  const n = 60;
  const secrets: string[] = [];
  for (let i = 0; i < n; i++) secrets.push((await api(a, 'POST', '', { id: `p-${i}` })).body.secret);
  await until(() => b.app.index.get(`p-${n - 1}`) !== undefined, 3000);
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    // Alternate the writer: revocations from either replica reach the other.
    const [writer, reader] = i % 2 === 0 ? [a, b] : [b, a];
    assert.ok((await check(reader, secrets[i]!)).ok_response);
    const res = await api(writer, 'DELETE', `/p-${i}`, { reason: 'bench' });
    assert.equal(res.status, 200);
    samples.push(await until(() => revoked(reader, secrets[i]!), 10_000));
  }
  samples.sort((x, y) => x - y);
  t.diagnostic(`revocation propagation over ${n}: p50 ${percentile(samples, 50).toFixed(1)} ms, p99 ${percentile(samples, 99).toFixed(1)} ms, max ${samples[n - 1]!.toFixed(1)} ms`);
});

test('rotation reaches the other replica: new secret at once, old one only for the overlap', async (t) => {
  const r = await twoReplicas(t);
  if (!r) return;
  const { a, b } = r;
  b.app.index.stop();
  const v1 = (await api(a, 'POST', '', { id: 'rot' })).body.secret as string;
  await until(() => b.app.index.get('rot') !== undefined, 2000);
  const rotated = (await api(a, 'POST', '/rot/rotate', { overlap: 60 })).body;
  await until(async () => (await check(b, rotated.secret)).ok_response !== undefined, 1000);
  const old = await check(b, v1);
  assert.equal(okHeaders(old)['x-orcheo-token-id'], 'rot~r1', 'old secret allowed during the overlap, under its archived id');
  assert.equal(okHeaders(old)['x-orcheo-subject'], 'rot', 'and still speaking for the name');
  const again = (await api(a, 'POST', '/rot/rotate', { overlap: 0 })).body;
  await until(async () => (await check(b, again.secret)).ok_response !== undefined, 1000);
  await until(async () => deniedBody(await check(b, rotated.secret)).code === 'auth.token_expired', 1000);
  assert.ok((await check(b, v1)).ok_response, 'the first secret keeps its own 60 s overlap');
});

test('after the listening connection drops, the replica resyncs everything it missed', async (t) => {
  const r = await twoReplicas(t);
  if (!r) return;
  const { a, b } = r;
  b.app.index.stop();
  const { secret } = (await api(a, 'POST', '', { id: 'silent' })).body;
  await until(() => b.app.index.get('silent') !== undefined, 2000);
  // A change that announces nothing (as if its notification was lost while disconnected).
  await sqlOn(a.schema!.url, `UPDATE service_tokens SET revoked_at = now(), updated_at = clock_timestamp() WHERE id = 'silent'`);
  await new Promise((res) => setTimeout(res, 300));
  assert.ok((await check(b, secret)).ok_response, 'without a notification or the poll, B has not seen it');
  const channel = b.app.tokenFeed.channelName;
  assert.ok(channel);
  const killed = await sqlOn(a.schema!.url, `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE query = $1`, [`LISTEN ${channel}`]);
  assert.ok(killed.length >= 1, 'found the listening connections');
  const ms = await until(() => revoked(b, secret), 5000);
  t.diagnostic(`resync after reconnect: ${ms.toFixed(0)} ms`);
  // And notifications flow again after the reconnect.
  const s2 = (await api(a, 'POST', '', { id: 'after' })).body.secret as string;
  await until(() => b.app.index.get('after') !== undefined, 2000);
  await api(a, 'DELETE', '/after', {});
  await until(() => revoked(b, s2), 1000);
});

test('notifications are per schema, carry only ids, and are sent on commit only', async (t) => {
  const r = await twoReplicas(t);
  if (!r) return;
  const { a, b } = r;
  const elsewhere = await startTestApp(ENV, 'pg');
  t.after(() => elsewhere.stop());
  const channel = b.app.tokenFeed.channelName!;
  assert.match(channel, /^orcheo_authz_tokens_[0-9a-f]{16}$/);
  assert.notEqual(elsewhere.app.tokenFeed.channelName, channel, 'another schema listens on another channel');

  const baseB = b.app.tokenFeed.received;
  const baseOther = elsewhere.app.tokenFeed.received;
  // A rolled-back write announces nothing.
  await assert.rejects(
    a.app.db.transaction(async (tx) => {
      await notifyTokenChange(tx, ['ghost']);
      throw new Error('rollback');
    }),
    /rollback/,
  );
  // Foreign or malformed payloads on our channel are ignored.
  await sqlOn(a.schema!.url, `SELECT pg_notify($1, $2)`, [channel, JSON.stringify({ schema: 'someone_else', ids: ['x'] })]);
  await sqlOn(a.schema!.url, `SELECT pg_notify($1, 'not json')`, [channel]);
  const spy = new Client({ connectionString: a.schema!.url });
  await spy.connect();
  t.after(() => spy.end());
  const payloads: string[] = [];
  spy.on('notification', (m) => payloads.push(m.payload ?? ''));
  await spy.query(`LISTEN ${channel}`);
  const { secret } = (await api(a, 'POST', '', { id: 'seen' })).body;
  await until(() => b.app.tokenFeed.received === baseB + 1, 2000);
  await until(() => payloads.length >= 1, 2000);
  const msg = JSON.parse(payloads[payloads.length - 1]!);
  assert.deepEqual(Object.keys(msg).sort(), ['at', 'ids', 'schema'], 'ids, schema and the write time only: never a secret');
  assert.ok(Math.abs(msg.at - Date.now()) < 60_000, 'at is the write time in epoch ms');
  assert.deepEqual(msg.ids, ['seen']);
  assert.equal(msg.schema, a.schema!.schema);
  assert.ok(!payloads.join('').includes(secret));
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(b.app.tokenFeed.received, baseB + 1, 'exactly one notification (the committed create) was taken');
  assert.ok(typeof b.app.tokenFeed.lastLagMs === 'number' && b.app.tokenFeed.lastLagMs >= 0, 'notification lag measured');
  t.diagnostic(`notification lag (write → other instance's index): ${b.app.tokenFeed.lastLagMs} ms`);
  assert.equal(elsewhere.app.tokenFeed.received, baseOther, 'the other schema heard nothing');
  assert.equal(deniedBody(await check(elsewhere, secret)).code, 'auth.invalid_token');
});
