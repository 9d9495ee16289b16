import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startTestApp, TEST_INTERVALS } from './helpers/app';
import { deniedBody, deniedHeaders, deniedStatus, okHeaders } from './helpers/grpc-client';
import { jwksOf, makeKey, sign, startJwksServer } from './helpers/jwks-server';

const now = () => Math.floor(Date.now() / 1000);

describe('JWTs through Check', () => {
  test('RS256 from a JWKS URL and HS256 from the secret: identity headers from the claims', async () => {
    const key = await makeKey('RS256', 'k1');
    const idp = await startJwksServer(jwksOf(key));
    const secret = 'an-hs256-secret-that-is-long-enough-0123456789';
    const t = await startTestApp({ ORCHEO_AUTH_JWKS_URL: idp.jwksUrl, ORCHEO_AUTH_JWT_SECRET: secret, ORCHEO_AUTH_AUDIENCE: 'orcheo-api', ORCHEO_AUTH_ISSUER: idp.url }, 'auto');
    try {
      assert.equal(t.app.mode(), 'required');
      const rs = await sign({ sub: 'user-123', jti: 'jti-1', aud: 'orcheo-api', iss: idp.url, exp: now() + 600, orcheo: { scopes: ['workflows:read', 'workflows:execute'], workspace_ids: ['ws-production', 'ws-staging'] } }, key);
      const r = await t.client.check({ method: 'POST', path: '/api/workflows/wf/runs', headers: { authorization: `Bearer ${rs}` } });
      assert.deepEqual(okHeaders(r), {
        'x-orcheo-authenticated': 'true',
        'x-orcheo-subject': 'user-123',
        'x-orcheo-identity-type': 'user',
        'x-orcheo-token-id': 'jti-1',
        'x-orcheo-scopes': 'workflows:execute,workflows:read',
        'x-orcheo-workspaces': 'ws-production,ws-staging',
      });
      const hs = await sign({ sub: 'svc-9', aud: 'orcheo-api', iss: idp.url, exp: now() + 600, scope: 'vault:read', token_use: 'client' }, { alg: 'HS256', secret });
      const h = okHeaders(await t.client.check({ path: '/api/credentials/c', headers: { authorization: `Bearer ${hs}` } }));
      assert.equal(h['x-orcheo-identity-type'], 'service');
      assert.equal(h['x-orcheo-token-id'], 'svc-9', 'no jti: the subject');
      const wrongAud = await sign({ sub: 'u', aud: 'other', iss: idp.url, exp: now() + 600 }, key);
      assert.equal(deniedBody(await t.client.check({ headers: { authorization: `Bearer ${wrongAud}` } })).code, 'auth.invalid_audience');
      const expired = await sign({ sub: 'u', aud: 'orcheo-api', iss: idp.url, exp: now() - 3600 }, key);
      const e = await t.client.check({ headers: { authorization: `Bearer ${expired}` } });
      assert.equal(deniedBody(e).message, 'Bearer token has expired');
      assert.equal(deniedHeaders(e)['www-authenticate'], 'Bearer error="invalid_token"');
      const confused = await sign({ sub: 'u', aud: 'orcheo-api', iss: idp.url, exp: now() + 600 }, { alg: 'HS256', secret: key.publicPem });
      assert.equal(deniedStatus(await t.client.check({ headers: { authorization: `Bearer ${confused}` } })), 401, 'HS256 with the RSA public key');
    } finally {
      await t.stop();
      await idp.close();
    }
  });

  test('provider down and an unknown kid → 503 auth.key_unavailable with retry-after', async (tc) => {
    const key = await makeKey('ES256', 'k1');
    const idp = await startJwksServer(jwksOf(key));
    idp.setDown('status');
    const t = await startTestApp({ ORCHEO_AUTH_JWKS_URL: idp.jwksUrl, ORCHEO_AUTH_ALLOWED_ALGORITHMS: 'ES256', ORCHEO_AUTH_JWKS_TIMEOUT: '0.5' }, 'auto');
    try {
      const tok = await sign({ sub: 'u', exp: now() + 600 }, key);
      const r = await t.client.check({ headers: { authorization: `Bearer ${tok}` } });
      assert.equal(deniedStatus(r), 503);
      assert.equal(r.status.code, 14);
      assert.equal(deniedBody(r).code, 'auth.key_unavailable');
      assert.ok(Number(deniedHeaders(r)['retry-after']) >= 1);
      idp.setDown(false);
      const upAt = Date.now();
      let ok = r;
      for (let i = 0; i < 100 && deniedStatus(ok) === 503; i++) {
        await new Promise((res) => setTimeout(res, 100));
        ok = await t.client.check({ path: '/other', headers: { authorization: `Bearer ${tok}` } });
      }
      assert.equal(okHeaders(ok)['x-orcheo-subject'], 'u', 'recovers once the provider answers');
      tc.diagnostic(`recovered after ${Date.now() - upAt} ms (JWKS failure backoff ${TEST_INTERVALS.jwksBackoffMs} ms)`);
    } finally {
      await t.stop();
      await idp.close();
    }
  });

  test('per-identity limit counts a verified subject', async () => {
    const secret = 'an-hs256-secret-that-is-long-enough-0123456789';
    const t = await startTestApp({ ORCHEO_AUTH_JWT_SECRET: secret, ORCHEO_AUTH_RATE_LIMIT_IDENTITY: '2' }, 'auto');
    try {
      const tok = await sign({ sub: 'alice', exp: now() + 600, scope: 'workflows:read' }, { alg: 'HS256', secret });
      for (let i = 0; i < 2; i++) assert.equal(deniedStatus(await t.client.check({ method: 'DELETE', path: '/api/workflows/x', headers: { authorization: `Bearer ${tok}` } })), 403);
      assert.equal(deniedBody(await t.client.check({ path: '/api/workflows', headers: { authorization: `Bearer ${tok}` } })).code, 'auth.rate_limited.identity');
    } finally {
      await t.stop();
    }
  });
});
