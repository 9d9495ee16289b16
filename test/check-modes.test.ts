import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { insertToken } from '../src/store/tokens';
import { startTestApp, type TestApp } from './helpers/app';
import { deniedBody, deniedStatus, okHeaders, type CheckResult } from './helpers/grpc-client';

const BOOT = 'bootstrap-secret-for-tests-0123456789';
const SPOOF = { 'x-orcheo-subject': 'admin', 'x-orcheo-scopes': 'admin:tokens:write', 'x-orcheo-authenticated': 'true', 'x-orcheo-extra': 'evil', 'X-Orcheo-Workspaces': '*' };

async function withApp(env: Record<string, string>, fn: (t: TestApp) => Promise<void>): Promise<void> {
  const t = await startTestApp(env, 'auto');
  try {
    await fn(t);
  } finally {
    await t.stop();
  }
}

/** A client's x-orcheo-* header either is overwritten by a trusted value or removed. */
function assertNoSpoof(r: CheckResult): void {
  assert.ok(r.ok_response, 'expected an allow');
  const set = okHeaders(r);
  const removed = new Set(r.ok_response.headers_to_remove ?? []);
  for (const name of Object.keys(SPOOF).map((n) => n.toLowerCase())) {
    assert.ok(name in set || removed.has(name), `${name} would reach the upstream`);
  }
  assert.ok(removed.has('x-orcheo-extra'));
  if (set['x-orcheo-authenticated'] === 'false') assert.equal(set['x-orcheo-subject'], undefined);
}

describe('modes', () => {
  test('disabled: everything allowed as anonymous, spoofed headers stripped', async () => {
    await withApp({ ORCHEO_AUTH_MODE: 'disabled', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT }, async (t) => {
      const r = await t.client.check({ method: 'DELETE', path: '/api/admin/service-tokens/x', headers: { ...SPOOF, authorization: 'Bearer garbage' } });
      assert.equal(okHeaders(r)['x-orcheo-authenticated'], 'false');
      assert.equal(okHeaders(r)['x-orcheo-identity-type'], 'anonymous');
      assertNoSpoof(r);
    });
  });

  test('optional: anonymous allowed without scope checks; presented credentials are checked in full', async () => {
    await withApp({ ORCHEO_AUTH_MODE: 'optional', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT }, async (t) => {
      const anon = await t.client.check({ method: 'POST', path: '/api/workflows', headers: SPOOF });
      assert.equal(okHeaders(anon)['x-orcheo-authenticated'], 'false');
      assertNoSpoof(anon);
      const bad = await t.client.check({ headers: { authorization: 'Bearer wrong' } });
      assert.equal(deniedStatus(bad), 401);
      assert.equal(deniedBody(bad).code, 'auth.invalid_token');
      const good = await t.client.check({ headers: { ...SPOOF, authorization: `Bearer ${BOOT}` } });
      assert.equal(okHeaders(good)['x-orcheo-subject'], 'bootstrap');
      assertNoSpoof(good);
    });
  });

  test('required: spoofed headers without a token are a 401, with a token they are overwritten', async () => {
    await withApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT }, async (t) => {
      assert.equal(deniedStatus(await t.client.check({ headers: SPOOF })), 401);
      const r = await t.client.check({ headers: { ...SPOOF, authorization: `Bearer ${BOOT}` } });
      assert.equal(okHeaders(r)['x-orcheo-subject'], 'bootstrap');
      assertNoSpoof(r);
    });
  });

  test('unset: optional until a credential source exists, then enforced', async () => {
    await withApp({}, async (t) => {
      assert.equal(t.app.mode(), 'optional');
      assert.ok((await t.client.check({ path: '/api/workflows' })).ok_response);
      const { record } = await insertToken(t.app.db, { id: 'first', scopes: [], workspaces: [] });
      t.app.index.apply(record);
      assert.equal(t.app.mode(), 'required');
      assert.equal(deniedStatus(await t.client.check({ path: '/api/workflows' })), 401);
    });
    await withApp({ ORCHEO_AUTH_JWT_SECRET: 'x'.repeat(40) }, async (t) => {
      assert.equal(t.app.mode(), 'required');
    });
  });

  test('CORS preflight is allowed without credentials in required mode', async () => {
    await withApp({ ORCHEO_AUTH_MODE: 'required' }, async (t) => {
      const r = await t.client.check({ method: 'OPTIONS', path: '/api/workflows', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', ...SPOOF } });
      assertNoSpoof(r);
      const plain = await t.client.check({ method: 'OPTIONS', path: '/api/workflows' });
      assert.equal(deniedStatus(plain), 401, 'an OPTIONS without the preflight headers is not a preflight');
    });
  });
});

describe('context_extensions and per-route modes', () => {
  test('public route: allowed without credentials, invalid ones ignored, valid ones identified', async () => {
    await withApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT }, async (t) => {
      const ext = { auth: 'public' };
      const anon = await t.client.check({ path: '/healthz', contextExtensions: ext, headers: SPOOF });
      assertNoSpoof(anon);
      assert.equal(okHeaders(anon)['x-orcheo-authenticated'], 'false');
      assert.equal(okHeaders(await t.client.check({ contextExtensions: ext, headers: { authorization: 'Bearer junk' } }))['x-orcheo-authenticated'], 'false');
      assert.equal(okHeaders(await t.client.check({ contextExtensions: ext, headers: { authorization: `Bearer ${BOOT}` } }))['x-orcheo-subject'], 'bootstrap');
    });
  });

  test('optional route in required mode; required_scopes and required_workspace override the policy', async () => {
    await withApp({ ORCHEO_AUTH_MODE: 'required' }, async (t) => {
      const { record, secret } = await insertToken(t.app.db, { id: 'svc', scopes: ['workflows:read'], workspaces: ['ws-1'] });
      t.app.index.apply(record);
      const auth = { authorization: `Bearer ${secret}` };
      assert.ok((await t.client.check({ contextExtensions: { auth: 'optional' } })).ok_response);
      const scoped = await t.client.check({ path: '/anything', headers: auth, contextExtensions: { required_scopes: 'vault:read, workflows:read' } });
      assert.equal(deniedBody(scoped).message, 'Missing required scopes: vault:read');
      assert.ok((await t.client.check({ path: '/api/workflows', headers: auth, contextExtensions: { required_workspace: 'ws-1' } })).ok_response);
      const ws = await t.client.check({ path: '/api/workflows', headers: auth, contextExtensions: { required_workspace: 'ws-2' } });
      assert.equal(deniedBody(ws).code, 'auth.workspace_forbidden');
      const typo = await t.client.check({ path: '/x', contextExtensions: { auth: 'pubic' } });
      assert.equal(deniedStatus(typo), 401, 'an unknown auth value must fail closed');
    });
  });
});

describe('WebSocket credentials', () => {
  const ws = { upgrade: 'websocket', connection: 'Upgrade' };
  test('sec-websocket-protocol bearer.<token>, access_token and token query parameters', async () => {
    await withApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT }, async (t) => {
      const proto = await t.client.check({ path: '/ws/workflow', headers: { ...ws, 'sec-websocket-protocol': `orcheo.v1, bearer.${BOOT}` } });
      assert.equal(okHeaders(proto)['x-orcheo-subject'], 'bootstrap');
      assert.deepEqual(proto.ok_response?.query_parameters_to_remove ?? [], []);
      for (const param of ['access_token', 'token']) {
        const r = await t.client.check({ path: `/ws/workflow?${param}=${encodeURIComponent(BOOT)}&x=1`, headers: ws });
        assert.equal(okHeaders(r)['x-orcheo-subject'], 'bootstrap', param);
        assert.deepEqual(r.ok_response?.query_parameters_to_remove, [param]);
      }
      const both = await t.client.check({ path: `/ws/workflow?token=wrong&access_token=${encodeURIComponent(BOOT)}`, headers: ws });
      assert.ok(both.ok_response, 'access_token takes precedence over token');
      const http2 = await t.client.check({ method: 'CONNECT', path: `/ws/workflow?token=${encodeURIComponent(BOOT)}`, headers: { ':protocol': 'websocket' } });
      assert.ok(http2.ok_response, 'RFC 8441 extended CONNECT is a WebSocket upgrade');
    });
  });

  test('query tokens are ignored on plain HTTP requests; the header wins over the query', async () => {
    await withApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT }, async (t) => {
      const r = await t.client.check({ path: `/api/x?access_token=${encodeURIComponent(BOOT)}` });
      assert.equal(deniedBody(r).code, 'auth.missing_token');
      const h = await t.client.check({ path: `/ws?token=${encodeURIComponent(BOOT)}`, headers: { ...ws, authorization: 'Bearer wrong' } });
      assert.equal(deniedBody(h).code, 'auth.invalid_token');
    });
  });
});
