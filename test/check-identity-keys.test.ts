/**
 * Identity windows are namespaced by kind, and only literal query names carry a credential; both
 * through the real gRPC server with real JWTs (HS256, jose) and a real service token.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { insertToken } from '../src/store/tokens';
import { startTestApp, type TestApp } from './helpers/app';
import { deniedBody, deniedStatus, type CheckResult } from './helpers/grpc-client';

const JWT_SECRET = 'jwt-secret-for-identity-key-tests-0123456789';
const BOOT = 'bootstrap-secret-for-identity-key-tests-0123';
const LIMIT = 2;

/** A valid JWT without the scope /api/workflows needs: each use is a 403 for that subject. */
function scopelessJwt(sub: string): Promise<string> {
  return new SignJWT({ scope: 'nothing:here' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(JWT_SECRET));
}

describe('identity keys by kind', () => {
  let t: TestApp;
  let secret: string;
  const call = (token: string, sourceIp: string): Promise<CheckResult> => t.client.check({ path: '/api/workflows', headers: { authorization: `Bearer ${token}` }, sourceIp });

  before(async () => {
    t = await startTestApp(
      { ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_JWT_SECRET: JWT_SECRET, ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT, ORCHEO_AUTH_RATE_LIMIT_IDENTITY: String(LIMIT), ORCHEO_AUTH_RATE_LIMIT_INTERVAL: '600' },
      'auto',
    );
    ({ secret } = await insertToken(t.app.db, { id: 'svc-keys', scopes: ['workflows:read'], workspaces: ['*'] }));
    await t.app.index.resync();
  });
  after(() => t.stop());

  test('a JWT whose sub is a service token id exhausts its own window, not the token\'s', async () => {
    const jwt = await scopelessJwt('svc-keys');
    const codes: string[] = [];
    for (let i = 0; i <= LIMIT; i++) codes.push(deniedBody(await call(jwt, `10.6.0.${i + 1}`)).code);
    assert.deepEqual(codes, ['auth.missing_scope', 'auth.missing_scope', 'auth.rate_limited.identity'], 'the JWT subject was counted');
    const svc = await call(secret, '10.6.1.1');
    assert.ok(svc.ok_response, `service token svc-keys still works, got ${svc.denied_response?.body}`);
  });

  test('a JWT whose sub is "bootstrap" does not exhaust the bootstrap token', async () => {
    const jwt = await scopelessJwt('bootstrap');
    for (let i = 0; i <= LIMIT; i++) await call(jwt, `10.6.2.${i + 1}`);
    assert.equal(deniedBody(await call(jwt, '10.6.2.9')).code, 'auth.rate_limited.identity');
    const boot = await call(BOOT, '10.6.3.1');
    assert.ok(boot.ok_response, `bootstrap still works, got ${boot.denied_response?.body}`);
  });
});

describe('query-parameter credentials: literal names only', () => {
  let t: TestApp;
  const ws = (query: string): Promise<CheckResult> =>
    t.client.check({ path: `/api/workflows?${query}`, headers: { upgrade: 'websocket', connection: 'Upgrade' } });

  before(async () => {
    t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT }, 'auto');
  });
  after(() => t.stop());

  test('?access%5Ftoken= is not a credential (Envoy would not strip it); ?access_token= is, and is stripped', async () => {
    const encoded = await ws(`access%5Ftoken=${BOOT}`);
    assert.equal(deniedStatus(encoded), 401);
    assert.equal(deniedBody(encoded).code, 'auth.missing_token');
    const encodedShort = await ws(`%74oken=${BOOT}`);
    assert.equal(deniedBody(encodedShort).code, 'auth.missing_token');

    const literal = await ws(`x=1&access_token=${encodeURIComponent(BOOT)}`);
    assert.ok(literal.ok_response, `literal name authenticates, got ${literal.denied_response?.body}`);
    assert.deepEqual(literal.ok_response.query_parameters_to_remove, ['access_token']);
    const token = await ws(`token=${BOOT}`);
    assert.deepEqual(token.ok_response?.query_parameters_to_remove, ['token']);
  });
});
