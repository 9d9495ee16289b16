/**
 * Issue 11 point 3 and the path rules of point 2, through the real gRPC server and the built-in
 * policy: every method on a guarded prefix needs a scope (GET/HEAD/OPTIONS the read scope, any other
 * method the write scope), `;parameters` are cut per segment, and a path the policy cannot read
 * unambiguously is `400 auth.invalid_request`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { startTestApp, type TestApp } from './helpers/app';
import { deniedBody, deniedStatus, okHeaders } from './helpers/grpc-client';

const JWT_SECRET = 'methods-test-jwt-secret-0123456789abcdef0123';
const READS = ['GET', 'HEAD', 'OPTIONS'];
const WRITES = ['POST', 'PUT', 'PATCH', 'DELETE', 'TRACE', 'PROPFIND', 'CONNECT', 'MKCOL', 'FETCH', 'X-CUSTOM'];
const PREFIXES: Array<[string, string, string]> = [
  ['/api/workflows/wf-1', 'workflows:read', 'workflows:write'],
  ['/api/credentials/c-1', 'vault:read', 'vault:write'],
  ['/api/admin/service-tokens/t-1', 'admin:tokens:read', 'admin:tokens:write'],
];

describe('built-in policy: every method is covered', () => {
  let t: TestApp;
  const jwt: Record<string, string> = {};
  const sign = (scopes: string[]) =>
    new SignJWT({ sub: `user-${scopes.join('+') || 'none'}`, scope: scopes.join(' ') }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(JWT_SECRET));

  before(async () => {
    t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_JWT_SECRET: JWT_SECRET }, 'auto');
    jwt.none = await sign([]);
    for (const [, read, write] of PREFIXES) {
      jwt[read] = await sign([read]);
      jwt[write] = await sign([write]);
    }
  });
  after(async () => {
    await t?.stop();
  });

  const check = (method: string, path: string, token: string, headers: Record<string, string> = {}) =>
    t.client.check({ method, path, headers: { authorization: `Bearer ${token}`, ...headers } });

  for (const [path, read, write] of PREFIXES) {
    test(`${path}: reads need ${read}, every other method ${write}`, async () => {
      for (const method of READS) {
        assert.ok((await check(method, path, jwt[read]!)).ok_response, `${method} with ${read}`);
        const r = await check(method, path, jwt[write]!);
        assert.equal(deniedBody(r).code, 'auth.missing_scope', `${method} with only ${write}`);
        assert.equal(deniedBody(r).message, `Missing required scopes: ${read}`);
      }
      for (const method of WRITES) {
        assert.ok((await check(method, path, jwt[write]!)).ok_response, `${method} with ${write}`);
        const r = await check(method, path, jwt[read]!);
        assert.equal(deniedBody(r).message, `Missing required scopes: ${write}`, `${method} with only ${read}`);
        assert.equal(deniedStatus(r), 403);
        assert.equal(deniedBody(await check(method, path, jwt.none!)).code, 'auth.missing_scope', `${method} with no scopes`);
      }
    });
  }

  test('a CORS preflight is still allowed without credentials; a plain OPTIONS is a read', async () => {
    const preflight = await t.client.check({ method: 'OPTIONS', path: '/api/credentials/c-1', headers: { origin: 'https://app.example', 'access-control-request-method': 'DELETE' } });
    assert.equal(okHeaders(preflight)['x-orcheo-authenticated'], 'false');
    assert.equal(deniedBody(await t.client.check({ method: 'OPTIONS', path: '/api/credentials/c-1' })).code, 'auth.missing_token');
    assert.equal(deniedBody(await check('OPTIONS', '/api/credentials/c-1', jwt.none!)).message, 'Missing required scopes: vault:read');
  });

  test(';parameters are cut from each segment before matching', async () => {
    for (const path of ['/api/credentials;x=1', '/api/credentials;x=1/c-1', '/api;v=2/credentials/c-1;jsessionid=abc', '/api/;x/credentials']) {
      assert.equal(deniedBody(await check('GET', path, jwt.none!)).message, 'Missing required scopes: vault:read', path);
      assert.ok((await check('GET', path, jwt['vault:read']!)).ok_response, path);
    }
  });

  test('a path the policy cannot read unambiguously is 400 auth.invalid_request', async () => {
    const bad = [
      '/api/workflows/%252e%252e/credentials', // `%2e%2e` left after one decoding
      '/api/%2577orkflows',
      '/api/credentials%00/c-1',
      '/api/credentials/c-1\u0000',
      '/api/workflows/%0a',
      '/api/workflows/\t',
      '/api/x%7f',
      '/api/x/%C2%85', // NEL, a C1 control
      '/api/public/..;x/credentials/c-1',
      '/api/credentials/.;x/c-1',
    ];
    for (const path of bad) {
      for (const token of [jwt['vault:read']!, jwt['workflows:write']!]) {
        const r = await check('GET', path, token);
        assert.ok(r.denied_response, `${JSON.stringify(path)} must be denied`);
        assert.equal(deniedStatus(r), 400, JSON.stringify(path));
        assert.equal(r.status.code, 3, 'gRPC INVALID_ARGUMENT');
        const body = deniedBody(r);
        assert.equal(body.code, 'auth.invalid_request', JSON.stringify(path));
        assert.equal(typeof body.message, 'string');
      }
    }
    // The same checks leave ordinary escapes and query strings alone.
    for (const path of ['/api/credentials/c%20one', '/api/credentials/%C3%A9', '/api/credentials/c-1?q=%2541%00', '/api/credentials/%zz']) {
      assert.ok((await check('GET', path, jwt['vault:read']!)).ok_response, path);
    }
    assert.ok(t.logs.some((l) => l.includes('auth.invalid_request') && l.includes('request denied')), 'the deny is logged as a decision');
    assert.ok(!t.logs.some((l) => l.includes('check failed')), 'an invalid path is not a failure');
  });
});
