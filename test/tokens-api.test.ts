import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Client } from 'pg';
import { startTestApp, type TestApp } from './helpers/app';
import { deniedBody, deniedStatus, okHeaders } from './helpers/grpc-client';
import { createTestSchema, PG_SKIP_REASON, pgReachable } from './helpers/pg';
import { startTcpProxy, viaProxy } from './helpers/tcp-proxy';
import { adminRequest } from './helpers/spawn';
import { notifyTokenChange } from '../src/store/notify';
import { insertToken } from '../src/store/tokens';

const BOOT = 'bootstrap-secret-for-tests-0123456789';
const BOOT_ENV = { ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT, ORCHEO_AUTH_MODE: 'required' };

/** Starts an app in its own schema (stopped and dropped after the test), or skips without Postgres. */
async function appFor(t: TestContext, env: Record<string, string> = BOOT_ENV): Promise<TestApp | undefined> {
  if (!(await pgReachable())) {
    t.skip(PG_SKIP_REASON);
    return undefined;
  }
  const a = await startTestApp(env);
  t.after(() => a.stop());
  return a;
}

const base = (a: TestApp) => `http://127.0.0.1:${a.app.httpPort}`;
const api = (a: TestApp, method: string, path: string, opts: Parameters<typeof adminRequest>[3] = {}) => adminRequest(base(a), method, path, { token: BOOT, ...opts });

/** A Check of GET /api/ping (authentication only) with `token`. */
const checkWith = (a: TestApp, token: string, path = '/api/ping', method = 'GET') => a.client.check({ method, path, headers: { authorization: `Bearer ${token}` } });

async function sql<T = Record<string, unknown>>(a: TestApp, text: string, params: unknown[] = []): Promise<T[]> {
  const c = new Client({ connectionString: a.schema!.url });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as T[];
  } finally {
    await c.end();
  }
}

function assertSecurityHeaders(h: Headers): void {
  assert.equal(h.get('cache-control'), 'no-store');
  assert.equal(h.get('x-content-type-options'), 'nosniff');
  assert.equal(h.get('x-frame-options'), 'DENY');
}

test('create, show and list: the secret is returned once, never stored or logged', async (t) => {
  const a = await appFor(t);
  if (!a) return;
  const created = await api(a, 'POST', '', { body: { id: 'my-ci-token', scopes: ['workflows:read', 'workflows:execute'], workspaces: ['ws-analytics'], expires_in: 3600 } });
  assert.equal(created.status, 201, created.text);
  assertSecurityHeaders(created.headers);
  const secret: string = created.body.secret;
  assert.match(secret, /^[A-Za-z0-9_-]{43,}$/, '≥ 256 bits, URL-safe');
  assert.equal(created.body.id, 'my-ci-token');
  assert.equal(created.body.status, 'Active');
  assert.deepEqual(created.body.scopes, ['workflows:execute', 'workflows:read']);
  assert.deepEqual(created.body.workspaces, ['ws-analytics']);
  assert.equal(created.body.created_by, 'bootstrap');
  const exp = Date.parse(created.body.expires_at) - Date.parse(created.body.issued_at);
  assert.equal(exp, 3600_000);

  const shown = await api(a, 'GET', '/my-ci-token');
  assert.equal(shown.status, 200);
  assertSecurityHeaders(shown.headers);
  assert.equal(shown.body.secret, undefined);
  assert.ok(!shown.text.includes(secret));
  assert.ok(!JSON.stringify(shown.body).includes('hash'));

  const listed = await api(a, 'GET', '');
  assert.equal(listed.status, 200);
  assert.deepEqual(listed.body.tokens.map((x: { id: string }) => x.id), ['my-ci-token']);
  assert.ok(!listed.text.includes(secret));

  // The new token works at once on this instance (the write is applied to the index on commit).
  const ok = await checkWith(a, secret, '/api/workflows/wf-1/runs', 'POST');
  assert.ok(ok.ok_response, JSON.stringify(ok));
  assert.equal(okHeaders(ok)['x-orcheo-subject'], 'my-ci-token');

  const rows = await sql<{ secret_hash: string }>(a, 'SELECT secret_hash FROM service_tokens');
  assert.equal(rows.length, 1);
  assert.notEqual(rows[0]!.secret_hash, secret);
  assert.ok(!a.logs.join('').includes(secret), 'secret must not reach the logs');
  assert.ok(!a.logs.join('').includes(BOOT), 'bootstrap token must not reach the logs');
});

test('a generated id when none is given; empty scopes and workspaces by default', async (t) => {
  const a = await appFor(t);
  if (!a) return;
  const r = await api(a, 'POST', '', { body: {} });
  assert.equal(r.status, 201, r.text);
  assert.match(r.body.id, /^token-[0-9a-f]{16}$/);
  assert.deepEqual(r.body.scopes, []);
  assert.deepEqual(r.body.workspaces, []);
  assert.equal(r.body.expires_at, null);
  const empty = await api(a, 'POST', '', { rawBody: '' });
  assert.equal(empty.status, 201, 'an empty body is {}');
});

test('each malformed input is a 400 saying what is wrong, and changes nothing', async (t) => {
  const a = await appFor(t);
  if (!a) return;
  assert.equal((await api(a, 'POST', '', { body: { id: 'keep' } })).status, 201);
  const cases: Array<[string, string, Parameters<typeof adminRequest>[3], RegExp, string]> = [
    ['POST', '', { body: { id: 'a', scopes: ['workflows:admin'] } }, /Unknown scope "workflows:admin"/, 'token.invalid_scope'],
    ['POST', '', { body: { id: 'a', scopes: ['Workflows:Read'] } }, /Unknown scope/, 'token.invalid_scope'],
    ['POST', '', { body: { id: 'a', scopes: 'workflows:read' } }, /scopes must be an array/, 'token.invalid_scope'],
    ['POST', '', { body: { id: 'a', workspaces: ['bad workspace!'] } }, /Malformed workspace id "bad workspace!"/, 'token.invalid_workspace'],
    ['POST', '', { body: { id: 'a', workspaces: [''] } }, /Malformed workspace id/, 'token.invalid_workspace'],
    ['POST', '', { body: { id: 'a', expires_in: 59 } }, /expires_in must be at least 60 seconds, got 59/, 'token.invalid_expires_in'],
    ['POST', '', { body: { id: 'a', expires_in: '3600' } }, /expires_in must be a whole number/, 'token.invalid_expires_in'],
    ['POST', '', { body: { id: 'a', expires_in: 1.5 } }, /expires_in must be a whole number/, 'token.invalid_expires_in'],
    ['POST', '', { body: { id: 'bad id/x' } }, /Malformed token id/, 'token.invalid_id'],
    ['POST', '', { body: { id: 'x~r1' } }, /Malformed token id/, 'token.invalid_id'],
    ['POST', '', { body: { id: 'audit' } }, /reserved/, 'token.invalid_id'],
    ['POST', '', { body: { id: 'a', expires: 60 } }, /Unknown field "expires"/, 'request.unknown_field'],
    ['POST', '', { rawBody: '{"id": "a",', headers: { 'content-type': 'application/json' } }, /not valid JSON/, 'request.malformed_body'],
    ['POST', '', { rawBody: '["a"]' }, /must be a JSON object/, 'request.malformed_body'],
    ['POST', '/keep/rotate', { body: { overlap: -1 } }, /overlap must be at least 0 seconds/, 'token.invalid_overlap'],
    ['POST', '/keep/rotate', { body: { expires_in: 10 } }, /expires_in must be at least 60/, 'token.invalid_expires_in'],
    ['POST', '/keep/rotate', { body: { scopes: ['nope'] } }, /Unknown scope "nope"/, 'token.invalid_scope'],
    ['DELETE', '/keep', { body: { reason: 'x'.repeat(501) } }, /reason too long/, 'token.invalid_reason'],
    ['DELETE', '/keep', { body: { reason: 'a\u001b[31mb' } }, /control characters/, 'token.invalid_reason'],
    ['GET', '?status=Zombie', {}, /Unknown status "Zombie"/, 'request.invalid_status'],
    ['GET', '?color=red', {}, /Unknown query parameter "color"/, 'request.unknown_parameter'],
    ['GET', '/bad%20id', {}, /Malformed token id/, 'token.invalid_id'],
  ];
  for (const [method, path, opts, message, code] of cases) {
    const r = await api(a, method, path, opts);
    assert.equal(r.status, 400, `${method} ${path} ${JSON.stringify(opts).slice(0, 80)} → ${r.status} ${r.text}`);
    assert.equal(r.body.code, code, r.text);
    assert.match(r.body.message, message);
    assertSecurityHeaders(r.headers);
  }
  const after = await api(a, 'GET', '');
  assert.deepEqual(after.body.tokens.map((x: { id: string; status: string }) => [x.id, x.status]), [['keep', 'Active']]);
  const audits = await sql<{ n: string }>(a, `SELECT count(*) AS n FROM auth_audit_events WHERE event LIKE 'token.%'`);
  assert.equal(Number(audits[0]!.n), 1, 'only the one creation was audited');
});

test('a duplicate id is a 409 and changes nothing', async (t) => {
  const a = await appFor(t);
  if (!a) return;
  const first = await api(a, 'POST', '', { body: { id: 'dup', scopes: ['workflows:read'] } });
  assert.equal(first.status, 201);
  const again = await api(a, 'POST', '', { body: { id: 'dup', scopes: ['vault:write'] } });
  assert.equal(again.status, 409);
  assert.equal(again.body.code, 'token.duplicate');
  assert.match(again.body.message, /"dup" already exists/);
  assert.equal(again.body.secret, undefined);
  const shown = await api(a, 'GET', '/dup');
  assert.deepEqual(shown.body.scopes, ['workflows:read']);
  assert.ok((await checkWith(a, first.body.secret)).ok_response, 'the original secret still works');
  const rows = await sql<{ n: string }>(a, `SELECT count(*) AS n FROM auth_audit_events WHERE event = 'token.created' AND token_id = 'dup'`);
  assert.equal(Number(rows[0]!.n), 1, 'the refused create left no audit row (one transaction)');
});

test('20 parallel creates with distinct ids are all stored, each with its own secret', async (t) => {
  const a = await appFor(t);
  if (!a) return;
  const ids = Array.from({ length: 20 }, (_, i) => `parallel-${i}`);
  const results = await Promise.all(ids.map((id) => api(a, 'POST', '', { body: { id, scopes: ['workflows:read'] } })));
  assert.deepEqual(results.map((r) => r.status), ids.map(() => 201));
  const secrets = new Set(results.map((r) => r.body.secret as string));
  assert.equal(secrets.size, 20);
  const listed = await api(a, 'GET', '');
  assert.deepEqual(listed.body.tokens.map((x: { id: string }) => x.id).sort(), [...ids].sort());
  for (const r of results) {
    const c = await checkWith(a, r.body.secret);
    assert.equal(okHeaders(c)['x-orcheo-token-id'], r.body.id);
  }
});

test('the admin API refuses callers without the admin scopes (403) or without a token (401)', async (t) => {
  const a = await appFor(t);
  if (!a) return;
  const plain = (await api(a, 'POST', '', { body: { id: 'plain', scopes: ['workflows:read'] } })).body.secret as string;
  const reader = (await api(a, 'POST', '', { body: { id: 'reader', scopes: ['admin:tokens:read'] } })).body.secret as string;

  const noScope = await api(a, 'GET', '', { token: plain });
  assert.equal(noScope.status, 403);
  assert.equal(noScope.body.code, 'auth.missing_scope');
  assert.equal(noScope.body.message, 'Missing required scopes: admin:tokens:read');
  assert.match(noScope.headers.get('www-authenticate') ?? '', /insufficient_scope/);
  assertSecurityHeaders(noScope.headers);

  assert.equal((await api(a, 'GET', '', { token: reader })).status, 200);
  assert.equal((await api(a, 'GET', '/plain', { token: reader })).status, 200);
  assert.equal((await api(a, 'GET', '/audit', { token: reader })).status, 200);
  for (const [method, path] of [['POST', ''], ['POST', '/plain/rotate'], ['DELETE', '/plain']] as const) {
    const w = await api(a, method, path, { token: reader, body: {} });
    assert.equal(w.status, 403, `${method} ${path}`);
    assert.equal(w.body.message, 'Missing required scopes: admin:tokens:write');
  }

  const anon = await adminRequest(base(a), 'GET', '');
  assert.equal(anon.status, 401);
  assert.equal(anon.body.code, 'auth.missing_token');
  assert.equal(anon.headers.get('www-authenticate'), 'Bearer');
  assertSecurityHeaders(anon.headers);
  const bad = await api(a, 'POST', '', { token: 'not-a-real-token-0123456789', body: { id: 'evil' } });
  assert.equal(bad.status, 401);
  assert.equal(bad.body.code, 'auth.invalid_token');
  const badScheme = await adminRequest(base(a), 'GET', '', { headers: { authorization: `Basic ${BOOT}` } });
  assert.equal(badScheme.status, 401);
  assert.equal(badScheme.body.code, 'auth.invalid_scheme');
  assert.equal((await api(a, 'GET', '/evil')).status, 404, 'nothing was created by refused callers');
});

test('admin endpoints always require authentication, even when nothing is configured (optional) or auth is disabled', async (t) => {
  const envs: Array<Record<string, string>> = [{}, { ORCHEO_AUTH_MODE: 'optional' }, { ORCHEO_AUTH_MODE: 'disabled' }];
  for (const env of envs) {
    const a = await appFor(t, env);
    if (!a) return;
    assert.notEqual(a.app.mode(), 'required');
    const anon = await adminRequest(base(a), 'POST', '', { body: { id: 'anon', scopes: ['admin:tokens:write'] } });
    assert.equal(anon.status, 401, `${JSON.stringify(env)}: ${anon.text}`);
    assert.equal(anon.body.code, 'auth.missing_token');
    assert.equal((await adminRequest(base(a), 'GET', '')).status, 401);
    assert.equal((await sql(a, 'SELECT id FROM service_tokens')).length, 0);
  }
});

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
  const a = await startTestApp(BOOT_ENV);
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
  const c = new Client({ connectionString: a.schema!.url });
  await c.connect();
  try {
    const rows = (await c.query(`SELECT event, token_id, reason, sum(count)::int AS n, count(*)::int AS rows FROM auth_audit_events
      WHERE event IN ('auth.failure', 'token.used') GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`)).rows;
    const got = Object.fromEntries(rows.map((r) => [`${r.event}|${r.token_id ?? ''}|${r.reason ?? ''}`, r.n]));
    assert.deepEqual(got, {
      'auth.failure||auth.invalid_token': 40,
      'auth.failure||auth.missing_token': 1,
      'auth.failure|user|auth.missing_scope': 7,
      // Admin API calls are Checks too: the create above used the bootstrap token (counted separately).
      'token.used|user|': 5,
    });
    // Counters, not a row per request: 53 requests, at most a few rows (one per key per flush).
    const total = rows.reduce((n, r) => n + r.rows, 0);
    assert.ok(total <= 8, `${total} rows for 53 requests`);
    const boot = (await c.query(`SELECT event, sum(count)::int AS n FROM auth_audit_events WHERE token_id = 'bootstrap' GROUP BY 1 ORDER BY 1`)).rows;
    assert.deepEqual(boot, [{ event: 'bootstrap.configured', n: 1 }, { event: 'bootstrap.used', n: 1 }]);
  } finally {
    await c.end();
  }
});

test('routing: HEAD reads, unknown sub-paths are 404, wrong methods 405, all with the security headers', async (t) => {
  const a = await appFor(t);
  if (!a) return;
  await api(a, 'POST', '', { body: { id: 'r' } });
  const head = await api(a, 'HEAD', '/r');
  assert.equal(head.status, 200);
  assertSecurityHeaders(head.headers);
  const deep = await api(a, 'GET', '/r/rotate/x');
  assert.equal(deep.status, 404);
  assertSecurityHeaders(deep.headers);
  const put = await api(a, 'PUT', '/r', { body: {} });
  assert.equal(put.status, 405);
  assert.equal(put.headers.get('allow'), 'GET, HEAD, DELETE');
  assertSecurityHeaders(put.headers);
  assert.equal((await api(a, 'GET', '/r/rotate')).status, 405);
  assert.equal((await api(a, 'DELETE', '')).status, 405);
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
  const auditBefore = await sql(a, 'SELECT count(*)::int AS n FROM auth_audit_events');
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
  assert.deepEqual(await sql(a, 'SELECT count(*)::int AS n FROM auth_audit_events'), auditBefore);
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

test('the pipeline rate limits apply to the admin API (429 with retry-after)', async (t) => {
  const a = await appFor(t, { ...BOOT_ENV, ORCHEO_AUTH_RATE_LIMIT_IP: '3', ORCHEO_AUTH_RATE_LIMIT_INTERVAL: '60' });
  if (!a) return;
  const codes: number[] = [];
  for (let i = 0; i < 5; i++) codes.push((await api(a, 'GET', '', { token: `wrong-token-${i}-0123456789` })).status);
  assert.deepEqual(codes, [401, 401, 401, 429, 429]);
  const limited = await api(a, 'GET', '');
  assert.equal(limited.status, 429, 'the IP is limited even with a valid token until the window slides');
  assert.equal(limited.body.code, 'auth.rate_limited.ip');
  assert.ok(Number(limited.headers.get('retry-after')) > 0);
  assertSecurityHeaders(limited.headers);
});

test('a chunked body is cut off at 64 KiB (no Content-Length to trust)', async (t) => {
  const a = await appFor(t);
  if (!a) return;
  const { request } = await import('node:http');
  const res = await new Promise<{ status: number; body: string; headers: Record<string, unknown> }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: a.app.httpPort, method: 'POST', path: '/api/admin/service-tokens', headers: { authorization: `Bearer ${BOOT}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (r) => {
      let body = '';
      r.on('data', (c: Buffer) => (body += c.toString()));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, body, headers: r.headers }));
    });
    req.on('error', reject);
    // A valid create padded with whitespace: without the limit it would be a 201 and `big` would exist.
    req.write('{"id": "big"');
    let sent = 0;
    const pump = (): void => {
      while (sent < 200 * 1024) {
        sent += 8192;
        if (!req.write(' '.repeat(8192))) return void req.once('drain', pump);
      }
      req.end('}');
    };
    pump();
  }).catch((err: Error) => ({ status: -1, body: err.message, headers: {} }));
  if (res.status !== -1) {
    assert.equal(res.status, 413, res.body);
    assert.equal(JSON.parse(res.body).code, 'request.body_too_large');
  }
  // Either way (answered, or the connection was closed on the sender), nothing was created.
  assert.equal((await api(a, 'GET', '/big')).status, 404);
});

test('minting grants at most what the caller holds: 403 token.privilege_escalation names what is missing', async (t) => {
  const a = await appFor(t);
  if (!a) return;
  const mk = async (token: string, body: Record<string, unknown>) => api(a, 'POST', '', { token, body });
  const wsAdmin = (await mk(BOOT, { id: 'ws-admin', scopes: ['admin:tokens:write', 'admin:tokens:read', 'workflows:read'], workspaces: ['ws-a'] })).body.secret as string;
  assert.ok(wsAdmin);
  assert.equal((await mk(BOOT, { id: 'wide', scopes: ['workflows:execute'], workspaces: ['ws-b'] })).status, 201);

  const all = await mk(wsAdmin, { id: 'evil', scopes: ['workflows:read', 'workflows:execute'], workspaces: ['*'] });
  assert.equal(all.status, 403, all.text);
  assert.equal(all.body.code, 'token.privilege_escalation');
  assert.match(all.body.message, /scopes workflows:execute;.*workspaces \*/);
  const otherWs = await mk(wsAdmin, { id: 'evil2', scopes: ['workflows:read'], workspaces: ['ws-a', 'ws-b'] });
  assert.equal(otherWs.status, 403);
  assert.match(otherWs.body.message, /workspaces ws-b$/);
  assert.equal((await api(a, 'GET', '/evil')).status, 404, 'nothing was created');

  const narrow = await mk(wsAdmin, { id: 'narrow', scopes: ['workflows:read'], workspaces: ['ws-a'] });
  assert.equal(narrow.status, 201, narrow.text);
  // Rotation: widening, or rotating a token whose own grants exceed the caller's, is refused.
  const widen = await api(a, 'POST', '/narrow/rotate', { token: wsAdmin, body: { scopes: ['admin:tokens:write', 'workflows:execute'] } });
  assert.equal(widen.status, 403, widen.text);
  assert.equal(widen.body.code, 'token.privilege_escalation');
  assert.match(widen.body.message, /scopes workflows:execute$/);
  const foreign = await api(a, 'POST', '/wide/rotate', { token: wsAdmin, body: {} });
  assert.equal(foreign.status, 403, foreign.text);
  assert.match(foreign.body.message, /scopes workflows:execute; workspaces ws-b/);
  assert.equal((await api(a, 'POST', '/narrow/rotate', { token: wsAdmin, body: {} })).status, 200, 'within its grants it may rotate');
  // A full admin (the bootstrap token: every scope, `*`) still can.
  assert.equal((await api(a, 'POST', '/wide/rotate', { body: { workspaces: ['*'] } })).status, 200);
  assert.equal((await mk(BOOT, { id: 'everything', scopes: ['workflows:execute', 'admin:tokens:write'], workspaces: ['*'] })).status, 201);
});

test('token ids may contain `:`; `bootstrap` and `audit` are reserved', async (t) => {
  const a = await appFor(t);
  if (!a) return;
  const c = await api(a, 'POST', '', { body: { id: 'ci:deploy.prod', scopes: ['workflows:read'] } });
  assert.equal(c.status, 201, c.text);
  assert.equal((await api(a, 'GET', `/${encodeURIComponent('ci:deploy.prod')}`)).body.id, 'ci:deploy.prod');
  assert.equal((await api(a, 'POST', '/ci:deploy.prod/rotate', { body: {} })).status, 200);
  for (const id of ['bootstrap', 'audit']) {
    const r = await api(a, 'POST', '', { body: { id } });
    assert.equal(r.status, 400, id);
    assert.equal(r.body.code, 'token.invalid_id');
  }
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

test('admin API calls, allowed or denied, do not count in orcheo_authz_checks_total (Envoy checks only)', async (t) => {
  const a = await appFor(t);
  if (!a) return;
  const checks = async () => (await a.app.metrics.checks.get()).values.reduce((n, v) => n + v.value, 0);
  assert.equal((await api(a, 'POST', '', { body: { id: 'counted' } })).status, 201);
  assert.equal((await api(a, 'GET', '')).status, 200);
  assert.equal((await api(a, 'GET', '', { token: 'wrong-token-0123456789-abcdef' })).status, 401);
  assert.equal(await checks(), 0);
  // A real Check still counts, so the counter is live.
  await checkWith(a, 'wrong-token-0123456789-abcdef');
  assert.equal(await checks(), 1);
});
