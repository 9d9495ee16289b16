import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { insertToken } from '../src/store/tokens';
import { startTestApp, type TestApp } from './helpers/app';
import { deniedBody, deniedHeaders, deniedStatus, okHeaders, type CheckResult } from './helpers/grpc-client';
import { PG_SKIP_REASON, pgReachable } from './helpers/pg';

const BOOT = 'bootstrap-secret-for-tests-0123456789';

function expectDeny(r: CheckResult, status: number, code: string, grpcCode: number): Record<string, string> {
  assert.equal(r.ok_response, undefined, 'expected a deny, got an allow');
  assert.equal(deniedStatus(r), status);
  assert.equal(r.status.code, grpcCode);
  const body = deniedBody(r);
  assert.equal(body.code, code);
  assert.ok(body.message.length > 0);
  const h = deniedHeaders(r);
  assert.equal(h['content-type'], 'application/json');
  return h;
}

describe('Check denials against real Postgres', async () => {
  const reachable = await pgReachable();
  let t: TestApp;
  const secrets: Record<string, string> = {};

  before(async () => {
    if (!reachable) return;
    t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT });
    const now = Date.now();
    const mk = async (id: string, scopes: string[], workspaces: string[], expiresAt?: number) => {
      const { record, secret } = await insertToken(t.app.db, { id, scopes, workspaces, expiresAt });
      t.app.index.apply(record);
      secrets[id] = secret;
    };
    await mk('reader', ['workflows:read'], ['ws-a']);
    await mk('expired', ['workflows:read'], ['ws-a'], now - 1000);
    await mk('revoked', ['workflows:read'], ['ws-a']);
    await t.app.db.query(`UPDATE service_tokens SET revoked_at = now(), revocation_reason = 'test', updated_at = clock_timestamp() WHERE id = 'revoked'`);
    await t.app.index.resync();
  });
  after(async () => {
    await t?.stop();
  });

  test('no credentials → 401 auth.missing_token, www-authenticate Bearer', { skip: !reachable && PG_SKIP_REASON }, async () => {
    const h = expectDeny(await t.client.check({ path: '/api/workflows' }), 401, 'auth.missing_token', 16);
    assert.equal(h['www-authenticate'], 'Bearer');
    assert.equal(deniedBody(await t.client.check({})).message, 'Missing bearer token');
  });

  test('empty bearer → 401 auth.missing_token', { skip: !reachable && PG_SKIP_REASON }, async () => {
    expectDeny(await t.client.check({ headers: { authorization: 'Bearer   ' } }), 401, 'auth.missing_token', 16);
  });

  test('another scheme → 401 auth.invalid_scheme', { skip: !reachable && PG_SKIP_REASON }, async () => {
    expectDeny(await t.client.check({ headers: { authorization: 'Basic dXNlcjpwYXNz' } }), 401, 'auth.invalid_scheme', 16);
  });

  test('scheme is case-insensitive', { skip: !reachable && PG_SKIP_REASON }, async () => {
    const r = await t.client.check({ headers: { authorization: `bEaReR ${secrets.reader}` } });
    assert.equal(okHeaders(r)['x-orcheo-subject'], 'reader');
  });

  test('unknown token → 401 auth.invalid_token with error="invalid_token"', { skip: !reachable && PG_SKIP_REASON }, async () => {
    const h = expectDeny(await t.client.check({ headers: { authorization: 'Bearer not-a-real-token' } }), 401, 'auth.invalid_token', 16);
    assert.equal(h['www-authenticate'], 'Bearer error="invalid_token"');
    assert.equal(deniedBody(await t.client.check({ headers: { authorization: 'Bearer nope' } })).message, 'Invalid bearer token');
  });

  test('expired service token → 401 auth.token_expired', { skip: !reachable && PG_SKIP_REASON }, async () => {
    const r = await t.client.check({ headers: { authorization: `Bearer ${secrets.expired}` } });
    expectDeny(r, 401, 'auth.token_expired', 16);
    assert.equal(deniedBody(r).message, 'Bearer token has expired');
  });

  test('revoked service token → 401 auth.token_revoked', { skip: !reachable && PG_SKIP_REASON }, async () => {
    expectDeny(await t.client.check({ headers: { authorization: `Bearer ${secrets.revoked}` } }), 401, 'auth.token_revoked', 16);
  });

  test('missing scope → 403 auth.missing_scope naming the scope', { skip: !reachable && PG_SKIP_REASON }, async () => {
    const r = await t.client.check({ method: 'POST', path: '/api/workflows', headers: { authorization: `Bearer ${secrets.reader}` } });
    const h = expectDeny(r, 403, 'auth.missing_scope', 7);
    assert.equal(deniedBody(r).message, 'Missing required scopes: workflows:write');
    assert.equal(h['www-authenticate'], 'Bearer error="insufficient_scope"');
  });

  test('other workspace → 403 auth.workspace_forbidden', { skip: !reachable && PG_SKIP_REASON }, async () => {
    const r = await t.client.check({ path: '/api/workspaces/ws-b/items', headers: { authorization: `Bearer ${secrets.reader}` } });
    expectDeny(r, 403, 'auth.workspace_forbidden', 7);
    assert.equal(deniedBody(r).message, 'Workspace access denied');
    const ok = await t.client.check({ path: '/api/workspaces/ws-a/items', headers: { authorization: `Bearer ${secrets.reader}` } });
    assert.equal(okHeaders(ok)['x-orcheo-workspaces'], 'ws-a');
  });

  test('allowed service token gets identity headers, append false, and dynamic metadata', { skip: !reachable && PG_SKIP_REASON }, async () => {
    const r = await t.client.check({ path: '/api/workflows/wf-1', headers: { authorization: `Bearer ${secrets.reader}` } });
    assert.equal(r.status.code, 0);
    assert.deepEqual(okHeaders(r), {
      'x-orcheo-authenticated': 'true',
      'x-orcheo-subject': 'reader',
      'x-orcheo-identity-type': 'service',
      'x-orcheo-token-id': 'reader',
      'x-orcheo-scopes': 'workflows:read',
      'x-orcheo-workspaces': 'ws-a',
    });
    for (const h of r.ok_response!.headers!) assert.equal(h.append?.value, false);
    assert.equal(r.dynamic_metadata?.fields.subject?.stringValue, 'reader');
    assert.equal(r.dynamic_metadata?.fields.authenticated?.boolValue, true);
  });

  test('bootstrap token: all scopes, every workspace', { skip: !reachable && PG_SKIP_REASON }, async () => {
    const r = await t.client.check({ method: 'POST', path: '/api/workspaces/anything/x', headers: { authorization: `Bearer ${BOOT}` } });
    const h = okHeaders(r);
    assert.equal(h['x-orcheo-subject'], 'bootstrap');
    assert.equal(h['x-orcheo-token-id'], 'bootstrap');
    assert.equal(h['x-orcheo-workspaces'], '*');
    assert.equal(h['x-orcheo-scopes'], 'admin:tokens:read,admin:tokens:write,vault:read,vault:write,workflows:execute,workflows:read,workflows:write');
  });

  test('no secret or token ever reaches the logs', { skip: !reachable && PG_SKIP_REASON }, async () => {
    const all = t.logs.join('');
    assert.ok(all.includes('request denied'), 'denials are logged');
    for (const s of [BOOT, ...Object.values(secrets)]) assert.ok(!all.includes(s), 'a secret leaked into the logs');
  });
});

describe('expired bootstrap token', async () => {
  const reachable = await pgReachable();
  test('→ 401 auth.token_expired', { skip: !reachable && PG_SKIP_REASON }, async () => {
    const t = await startTestApp({ ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT, ORCHEO_AUTH_BOOTSTRAP_TOKEN_EXPIRES_AT: '2024-05-01T12:00:00Z' });
    try {
      expectDeny(await t.client.check({ headers: { authorization: `Bearer ${BOOT}` } }), 401, 'auth.token_expired', 16);
    } finally {
      await t.stop();
    }
  });
});
