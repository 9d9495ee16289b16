/**
 * Service token lifecycle through the admin API: rotation, revocation, the audit trail, notifications
 * between replicas and the index's view of rows changed behind its back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, appFor, assertSecurityHeaders, BOOT, BOOT_ENV, checkWith, sql } from './helpers/admin-api';
import { startTestApp } from './helpers/app';
import { deniedBody, deniedStatus, okHeaders } from './helpers/grpc-client';
import { PG_SKIP_REASON, pgReachable } from './helpers/pg';
import { notifyTokenChange } from '../src/store/notify';
import { insertToken } from '../src/store/tokens';

test('rotation with overlap 0 ends the old secret at once; the name keeps pointing at the new one', async (t) => {
  const a = await appFor(t);
  if (!a) return;
  const old = (await api(a, 'POST', '', { body: { id: 'my-ci-token', scopes: ['workflows:read'], expires_in: 7200 } })).body;
  const rotated = await api(a, 'POST', '/my-ci-token/rotate', { body: { overlap: 0 } });
  assert.equal(rotated.status, 200, rotated.text);
  assertSecurityHeaders(rotated.headers);
  const fresh = rotated.body;
  assert.equal(fresh.id, 'my-ci-token');
  assert.notEqual(fresh.secret, old.secret);
  assert.deepEqual(fresh.scopes, ['workflows:read']);
  assert.equal(fresh.rotated_from, 'my-ci-token~r1');
  assert.equal(Date.parse(fresh.expires_at) - Date.parse(fresh.issued_at), 7200_000, 'the old lifetime by default');
  assert.equal(fresh.previous.id, 'my-ci-token~r1');
  assert.equal(fresh.previous.status, 'Rotated');
  assert.equal(fresh.previous.rotated_to, 'my-ci-token');

  const denied = await checkWith(a, old.secret);
  assert.equal(deniedStatus(denied), 401);
  assert.equal(deniedBody(denied).code, 'auth.token_expired');
  const allowed = await checkWith(a, fresh.secret);
  assert.equal(okHeaders(allowed)['x-orcheo-subject'], 'my-ci-token');

  const shown = (await api(a, 'GET', '/my-ci-token')).body;
  assert.equal(shown.status, 'Active');
  assert.equal(shown.rotated_from, 'my-ci-token~r1');
  const prev = (await api(a, 'GET', '/my-ci-token~r1')).body;
  assert.equal(prev.status, 'Rotated');
  assert.equal(prev.rotated_to, 'my-ci-token');
  const statuses = (await api(a, 'GET', '')).body.tokens.map((x: { id: string; status: string }) => `${x.id}=${x.status}`).sort();
  assert.deepEqual(statuses, ['my-ci-token=Active', 'my-ci-token~r1=Rotated']);
  assert.deepEqual((await api(a, 'GET', '?status=rotated')).body.tokens.map((x: { id: string }) => x.id), ['my-ci-token~r1']);

  // Rotate again: generations count up; a superseded secret cannot be rotated.
  const second = await api(a, 'POST', '/my-ci-token/rotate', { body: { overlap: 0, scopes: ['workflows:read', 'workflows:write'], workspaces: ['ws-1'], expires_in: 600 } });
  assert.equal(second.status, 200);
  assert.equal(second.body.previous.id, 'my-ci-token~r2');
  assert.deepEqual(second.body.scopes, ['workflows:read', 'workflows:write']);
  assert.deepEqual(second.body.workspaces, ['ws-1']);
  assert.equal(Date.parse(second.body.expires_at) - Date.parse(second.body.issued_at), 600_000);
  const again = await api(a, 'POST', '/my-ci-token~r1/rotate', { body: {} });
  assert.equal(again.status, 409);
  assert.equal(again.body.code, 'token.not_active');
  assert.equal((await api(a, 'POST', '/nope/rotate', { body: {} })).status, 404);

  // Revoking reports the same rotated_from as show (revoke --json and show --json agree).
  const shownBefore = (await api(a, 'GET', '/my-ci-token')).body;
  const revoked = await api(a, 'DELETE', '/my-ci-token', { body: { reason: 'test' } });
  assert.equal(revoked.status, 200, revoked.text);
  assert.equal(revoked.body.rotated_from, 'my-ci-token~r2');
  assert.equal(revoked.body.rotated_from, shownBefore.rotated_from);
});

test('rotation with a short overlap: the old secret works during it, never past it', async (t) => {
  const a = await appFor(t);
  if (!a) return;
  const old = (await api(a, 'POST', '', { body: { id: 'svc' } })).body;
  const rotated = (await api(a, 'POST', '/svc/rotate', { body: { overlap: 2 } })).body;
  const start = Date.now();
  assert.ok((await checkWith(a, old.secret)).ok_response, 'old secret allowed during the overlap');
  assert.ok((await checkWith(a, rotated.secret)).ok_response);
  const oldHeaders = okHeaders(await checkWith(a, old.secret));
  assert.equal(oldHeaders['x-orcheo-subject'], 'svc', 'the old secret still speaks for the name');
  assert.equal(oldHeaders['x-orcheo-token-id'], 'svc~r1', 'its token id tells it apart');
  const end = Date.parse(rotated.previous.expires_at);
  assert.ok(Math.abs(end - (Date.parse(rotated.issued_at) + 2000)) < 50, 'expires exactly overlap after the rotation');
  await new Promise((r) => setTimeout(r, Math.max(0, end - Date.now()) + 50));
  const after = await checkWith(a, old.secret);
  assert.equal(deniedBody(after).code, 'auth.token_expired', `denied ${Date.now() - start} ms after rotation`);
  assert.ok((await checkWith(a, rotated.secret)).ok_response);

  // Never past its own expiry: a token expiring in 60 s rotated with a 1 h overlap keeps its expiry.
  const short = (await api(a, 'POST', '', { body: { id: 'short', expires_in: 60 } })).body;
  const r2 = (await api(a, 'POST', '/short/rotate', { body: { overlap: 3600 } })).body;
  assert.equal(r2.previous.expires_at, short.expires_at);
});

test('revocation: immediate, recorded with its reason, cascades to a previous secret still in overlap', async (t) => {
  const a = await appFor(t);
  if (!a) return;
  const v1 = (await api(a, 'POST', '', { body: { id: 'rev', scopes: ['workflows:read'] } })).body;
  const v2 = (await api(a, 'POST', '/rev/rotate', { body: { overlap: 600 } })).body;
  assert.ok((await checkWith(a, v1.secret)).ok_response);
  const r = await api(a, 'DELETE', '/rev', { body: { reason: 'Token compromised' }, headers: { 'user-agent': 'audit-test/1.0' } });
  assert.equal(r.status, 200, r.text);
  assertSecurityHeaders(r.headers);
  assert.equal(r.body.status, 'Revoked');
  assert.equal(r.body.revocation_reason, 'Token compromised');
  assert.deepEqual(r.body.also_revoked, ['rev~r1']);
  for (const s of [v1.secret, v2.secret]) {
    const d = await checkWith(a, s);
    assert.equal(deniedStatus(d), 401);
    assert.equal(deniedBody(d).code, 'auth.token_revoked');
  }
  const twice = await api(a, 'DELETE', '/rev', { body: {} });
  assert.equal(twice.status, 409);
  assert.equal(twice.body.code, 'token.already_revoked');
  const missing = await api(a, 'DELETE', '/ghost', { body: {} });
  assert.equal(missing.status, 404);
  assert.equal(missing.body.code, 'token.not_found');
  assert.match(missing.body.message, /"ghost" not found/);
  assert.equal((await api(a, 'GET', '/ghost')).status, 404);
  // Reason as a query parameter (DELETE bodies do not survive every proxy); revoked tokens stay listed.
  await api(a, 'POST', '', { body: { id: 'q' } });
  assert.equal((await api(a, 'DELETE', '/q?reason=rotated%20out')).body.revocation_reason, 'rotated out');
  const listed = (await api(a, 'GET', '?status=Revoked')).body.tokens.map((x: { id: string }) => x.id).sort();
  assert.deepEqual(listed, ['q', 'rev', 'rev~r1']);
  assert.equal(Number((await sql<{ n: string }>(a, 'SELECT count(*) AS n FROM service_tokens'))[0]!.n), 3, 'tokens are never deleted');
});

test('audit trail: created, rotated, revoked with actor, IP, user agent and reason; API filter by id', async (t) => {
  const a = await appFor(t);
  if (!a) return;
  const ua = { 'user-agent': 'orcheo-test-agent/2' };
  await api(a, 'POST', '', { body: { id: 'aud', scopes: ['workflows:read'] }, headers: ua });
  await api(a, 'POST', '/aud/rotate', { body: { overlap: 30 }, headers: ua });
  await api(a, 'DELETE', '/aud', { body: { reason: 'done' }, headers: ua });
  await api(a, 'POST', '', { body: { id: 'other' }, headers: ua });
  const rows = await sql<{ event: string; token_id: string; actor: string; client_ip: string; user_agent: string; reason: string | null; details: Record<string, unknown> }>(
    a,
    `SELECT event, token_id, actor, client_ip, user_agent, reason, details FROM auth_audit_events WHERE event LIKE 'token.%' ORDER BY id`,
  );
  assert.deepEqual(rows.map((r) => `${r.event}:${r.token_id}`), ['token.created:aud', 'token.rotated:aud', 'token.revoked:aud', 'token.revoked:aud~r1', 'token.created:other']);
  for (const r of rows) {
    assert.equal(r.actor, 'bootstrap');
    assert.match(r.client_ip, /127\.0\.0\.1/);
    assert.equal(r.user_agent, 'orcheo-test-agent/2');
  }
  assert.equal(rows[1]!.details.previous_id, 'aud~r1');
  assert.equal(rows[1]!.details.overlap_seconds, 30);
  assert.equal(rows[2]!.reason, 'done');
  const all = JSON.stringify(await sql(a, 'SELECT * FROM auth_audit_events'));
  assert.ok(!all.includes(BOOT));

  const viaApi = await api(a, 'GET', '/audit?id=aud');
  assert.equal(viaApi.status, 200);
  assertSecurityHeaders(viaApi.headers);
  assert.deepEqual(viaApi.body.events.map((e: { event: string; token_id: string }) => `${e.event}:${e.token_id}`), ['token.revoked:aud~r1', 'token.revoked:aud', 'token.rotated:aud', 'token.created:aud']);
  const limited = await api(a, 'GET', '/audit?event=token.created&limit=1');
  assert.deepEqual(limited.body.events.map((e: { token_id: string }) => e.token_id), ['other']);
  assert.equal((await api(a, 'GET', '/audit?limit=0')).status, 400);
});

test('authentication failures and token use are aggregated into counters, flushed at stop', async (t) => {
  if (!(await pgReachable())) return t.skip(PG_SKIP_REASON);
  // No timed flush during the test (how many windows 53 requests span depends on the machine's
  // load): everything is written by the flush at stop, one row per key.
  const a = await startTestApp(BOOT_ENV, 'pg', undefined, { intervals: { flushMs: 600_000 } });
  let stopped = false;
  t.after(async () => {
    if (!stopped) await a.stop();
    else await a.schema?.drop();
  });
  const good = (await api(a, 'POST', '', { body: { id: 'user', scopes: ['workflows:read'] } })).body.secret as string;
  for (let i = 0; i < 40; i++) await checkWith(a, `random-token-${i}-0123456789abcdef`);
  for (let i = 0; i < 7; i++) await a.client.check({ method: 'POST', path: '/api/workflows', headers: { authorization: `Bearer ${good}` } });
  for (let i = 0; i < 5; i++) await checkWith(a, good);
  await a.client.check({ path: '/api/ping' });
  // A clean stop flushes the counters (keep the schema for the assertions).
  a.client.close();
  await a.app.stop(1000);
  stopped = true;
  const rows = await sql<{ event: string; token_id: string | null; reason: string | null; n: number; rows: number }>(a, `SELECT event, token_id, reason, sum(count)::int AS n, count(*)::int AS rows FROM auth_audit_events
    WHERE event IN ('auth.failure', 'token.used') GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`);
  const got = Object.fromEntries(rows.map((r) => [`${r.event}|${r.token_id ?? ''}|${r.reason ?? ''}`, r.n]));
  assert.deepEqual(got, {
    'auth.failure||auth.invalid_token': 40,
    'auth.failure||auth.missing_token': 1,
    'auth.failure|user|auth.missing_scope': 7,
    // Admin API calls are Checks too: the create above used the bootstrap token (counted separately).
    'token.used|user|': 5,
  });
  // Counters, not a row per request: 53 requests, one row per key for the one flush.
  assert.deepEqual(rows.map((r) => r.rows), [1, 1, 1, 1], 'one row per key');
  const boot = await sql(a, `SELECT event, sum(count)::int AS n FROM auth_audit_events WHERE token_id = 'bootstrap' GROUP BY 1 ORDER BY 1`);
  assert.deepEqual(boot, [{ event: 'bootstrap.configured', n: 1 }, { event: 'bootstrap.used', n: 1 }]);
});

test('embedded store: a write announces itself in-process (NOTIFY), reaching the index without the poll', async (t) => {
  const a = await startTestApp(BOOT_ENV, 'embedded');
  t.after(() => a.stop());
  a.app.index.stop();
  const before = a.app.tokenFeed.received;
  const { secret } = await a.app.db.transaction(async (tx) => {
    const out = await insertToken(tx, { id: 'direct', scopes: [], workspaces: [] });
    await notifyTokenChange(tx, ['direct']);
    return out;
  });
  const deadline = Date.now() + 2000;
  while (!a.app.index.get('direct') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.ok(a.app.index.get('direct'), 'the notification refreshed the index');
  assert.equal(a.app.tokenFeed.received, before + 1);
  assert.ok((await checkWith(a, secret)).ok_response);
  // And the admin API works on the embedded store too.
  const r = await api(a, 'POST', '', { body: { id: 'emb' } });
  assert.equal(r.status, 201);
  assert.equal((await api(a, 'DELETE', '/emb', { body: { reason: 'x' } })).status, 200);
  assert.equal(deniedBody(await checkWith(a, r.body.secret)).code, 'auth.token_revoked');
});

test('concurrent rotations of one name serialise into successive generations; nothing is lost', async (t) => {
  const a = await appFor(t);
  if (!a) return;
  await api(a, 'POST', '', { body: { id: 'busy' } });
  const results = await Promise.all([1, 2, 3].map(() => api(a, 'POST', '/busy/rotate', { body: { overlap: 60 } })));
  assert.deepEqual(results.map((r) => r.status), [200, 200, 200]);
  assert.deepEqual(results.map((r) => r.body.previous.id).sort(), ['busy~r1', 'busy~r2', 'busy~r3']);
  const ids = (await api(a, 'GET', '')).body.tokens.map((x: { id: string; status: string }) => `${x.id}=${x.status}`).sort();
  assert.deepEqual(ids, ['busy=Active', 'busy~r1=Rotated', 'busy~r2=Rotated', 'busy~r3=Rotated']);
  // Exactly one of the three new secrets is the current one; the others are inside their overlap.
  const tokenIds = await Promise.all(results.map(async (r) => okHeaders(await checkWith(a, r.body.secret))['x-orcheo-token-id']));
  assert.deepEqual(tokenIds.filter((s) => s === 'busy').length, 1, tokenIds.join(','));
});

test('a token row deleted by hand stops authenticating within the poll bound; revoking it is a 404', async (t) => {
  const a = await appFor(t);
  if (!a) return;
  const secrets: string[] = [];
  for (const id of ['gone', 'kept']) secrets.push((await api(a, 'POST', '', { body: { id, scopes: ['workflows:read'] } })).body.secret as string);
  assert.ok(okHeaders(await checkWith(a, secrets[0]!)), 'works before');
  await sql(a, `DELETE FROM service_tokens WHERE id = 'gone'`);
  const end = Date.now() + 8000;
  let r = await checkWith(a, secrets[0]!);
  while (deniedStatus(r) === undefined && Date.now() < end) {
    await new Promise((res) => setTimeout(res, 100));
    r = await checkWith(a, secrets[0]!);
  }
  assert.equal(deniedBody(r).code, 'auth.invalid_token', 'a deleted row must not authenticate');
  assert.ok(okHeaders(await checkWith(a, secrets[1]!)), 'other tokens are untouched');
  const rev = await api(a, 'DELETE', '/gone');
  assert.equal(rev.status, 404, rev.text);
});
