/**
 * Admin API access: authentication through the Check pipeline, the admin scopes, rate limits, grants
 * no larger than the caller's, and admin calls kept out of the Check metrics.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, appFor, assertSecurityHeaders, base, BOOT, BOOT_ENV, checkWith, sql } from './helpers/admin-api';
import { adminRequest } from './helpers/spawn';

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

test('admin API calls, allowed or denied, do not count in orcheo_authz_checks_total (Envoy checks only)', async (t) => {
  const a = await appFor(t);
  if (!a) return;
  const checks = async () => a.app.metrics.checks.total();
  assert.equal((await api(a, 'POST', '', { body: { id: 'counted' } })).status, 201);
  assert.equal((await api(a, 'GET', '')).status, 200);
  assert.equal((await api(a, 'GET', '', { token: 'wrong-token-0123456789-abcdef' })).status, 401);
  assert.equal(await checks(), 0);
  // A real Check still counts, so the counter is live.
  await checkWith(a, 'wrong-token-0123456789-abcdef');
  assert.equal(await checks(), 1);
});
