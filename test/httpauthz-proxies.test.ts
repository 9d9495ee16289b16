/**
 * nginx and Caddy, running the shipped deploy/ configs, in front of an echo upstream and the HTTP
 * authorization interface, driven by a real HTTP client. The service's store is down for the whole
 * file (a closed port, never migrated): the bootstrap token and JWTs still decide, and a
 * service-token-shaped token nobody can look up is the 503 path.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from './helpers/app';
import { sign } from './helpers/jwks-server';
import { call, DEPLOY, proxyBinary, startCaddy, startEcho, startNginx, type EchoUpstream, type HttpAnswer, type ProxyProcess } from './helpers/proxy';
import { freePort } from './helpers/redis-server';

const BOOT = 'boot-strap-token-for-proxy-tests';
const SECRET = 'proxy-test-hs256-secret-0123456789abcdef';
const UNKNOWN = 'q7bX3kP0vN9mZ2rT5wY8aC1dF4gH6jL0sU3eI7oR2nB'; // service-token shaped, in no store

const jwt = (sub: string, scope = ''): Promise<string> => sign({ sub, scope, exp: Math.floor(Date.now() / 1000) + 600 }, { alg: 'HS256', secret: SECRET });
const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });
const code = (a: HttpAnswer): string | undefined => (JSON.parse(a.body) as { code?: string }).code;

/** A WebSocket handshake: resolves with the status the client got (101 when upgraded). */
function handshake(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('real proxies in front of the HTTP authorization interface', async () => {
  let t: TestApp;
  let echo: EchoUpstream;
  before(async () => {
    t = await startTestApp({
      ORCHEO_AUTH_MODE: 'required',
      ORCHEO_AUTH_DATABASE_URL: `postgres://postgres@127.0.0.1:${await freePort()}/none`,
      ORCHEO_AUTH_AUTO_MIGRATE: 'false',
      ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT,
      ORCHEO_AUTH_BOOTSTRAP_TOKEN_SCOPES: 'workflows:read',
      ORCHEO_AUTH_JWT_SECRET: SECRET,
      ORCHEO_AUTH_RATE_LIMIT_IDENTITY: '2',
      ORCHEO_AUTH_TRUSTED_PROXIES: '127.0.0.1',
      // The shipped example policy: the built-in rules plus a public /healthz (a spoofing target).
      ORCHEO_AUTH_POLICY_FILE: join(DEPLOY, 'policy', 'policy.yaml'),
    }, 'auto');
    echo = await startEcho();
  });
  after(async () => {
    await echo?.close();
    await t?.stop();
  });

  const suite = (name: 'nginx' | 'caddy', start: typeof startNginx, opts: { stripsQueryToken: boolean; stripsOtherOrcheoHeaders: boolean; downStatus: number }) => {
    const found = proxyBinary(name);
    if (found.skip && process.env.CI_REQUIRE_BACKENDS) throw new Error(`CI_REQUIRE_BACKENDS is set but ${found.skip}`);
    describe(name, { skip: found.skip }, () => {
      let proxy: ProxyProcess;
      before(async () => {
        proxy = await start(found.bin!, { authzPort: t.app.httpAuthzPort, upstreamPort: echo.port });
      });
      after(async () => proxy?.close());
      const last = () => echo.seen[echo.seen.length - 1]!;

      test('no token: 401 with the JSON body and www-authenticate, nothing reaches the upstream', async () => {
        const before = echo.seen.length;
        const r = await call(proxy.port, '/api/workflows/1');
        assert.equal(r.status, 401, r.body);
        assert.equal(code(r), 'auth.missing_token');
        assert.match(String(r.headers['content-type']), /application\/json/);
        assert.equal(r.headers['www-authenticate'], 'Bearer');
        assert.equal(echo.seen.length, before);
      });

      test('valid token: 200, the upstream sees the identity and not the client\'s spoofed copies', async () => {
        const r = await call(proxy.port, '/api/workflows/1?q=1', { ...bearer(BOOT), 'x-orcheo-subject': 'admin', 'x-orcheo-scopes': 'admin:tokens:write', 'x-orcheo-authenticated': 'false', 'x-orcheo-extra': 'spoof' });
        assert.equal(r.status, 200, r.body);
        const h = last().headers;
        assert.equal(last().url, '/api/workflows/1?q=1');
        assert.equal(h['x-orcheo-subject'], 'bootstrap');
        assert.equal(h['x-orcheo-scopes'], 'workflows:read');
        assert.equal(h['x-orcheo-authenticated'], 'true');
        assert.equal(h['x-orcheo-identity-type'], 'service');
        // nginx can overwrite named headers only; Caddy deletes every client x-orcheo-* (deploy/README.md).
        assert.equal(h['x-orcheo-extra'], opts.stripsOtherOrcheoHeaders ? undefined : 'spoof');
        assert.ok(!h['x-orcheo-identity'], `no assertion configured: the header is absent or empty, got ${JSON.stringify(h['x-orcheo-identity'])}`);
      });

      test('a client\'s own forwarding headers never choose what is checked', async () => {
        assert.equal((await call(proxy.port, '/healthz')).status, 200, 'control: /healthz is public');
        const spoof = { 'x-forwarded-uri': '/healthz', 'x-original-uri': '/healthz', 'x-forwarded-method': 'GET', 'x-original-method': 'GET' };
        const before = echo.seen.length;
        const r = await call(proxy.port, '/api/workflows/1', spoof);
        assert.equal(r.status, 401, r.body);
        // A JWT of its own: the 403 counts against this identity's failure window.
        const write = await call(proxy.port, '/api/workflows/1', { ...bearer(await jwt(`${name}-dave`, 'workflows:read')), ...spoof }, 'POST');
        assert.equal(write.status, 403, 'checked as the POST it is, not the GET the client claimed');
        assert.equal(echo.seen.length, before);
      });

      test('scope denial: 403 with the service\'s code', async () => {
        const r = await call(proxy.port, '/api/credentials/1', bearer(await jwt(`${name}-bob`)));
        assert.equal(r.status, 403, r.body);
        assert.equal(code(r), 'auth.missing_scope');
        assert.equal(r.headers['www-authenticate'], 'Bearer error="insufficient_scope"');
      });

      test('rate limited: 429 with retry-after at the client', async () => {
        const token = bearer(await jwt(`${name}-carol`));
        for (let i = 0; i < 2; i++) assert.equal((await call(proxy.port, '/api/credentials/1', token)).status, 403);
        const r = await call(proxy.port, '/api/credentials/1', token);
        assert.equal(r.status, 429, r.body);
        assert.equal(code(r), 'auth.rate_limited.identity');
        assert.ok(Number(r.headers['retry-after']) >= 1, `retry-after ${String(r.headers['retry-after'])}`);
      });

      test('store down: an unknown service token is 503 with retry-after', async () => {
        const r = await call(proxy.port, '/api/workflows/1', bearer(UNKNOWN));
        assert.equal(r.status, 503, r.body);
        assert.equal(code(r), 'auth.backend_unavailable');
        assert.ok(Number(r.headers['retry-after']) >= 1);
      });

      test('WebSocket handshake with a query token is checked and upgraded', async () => {
        assert.equal(await handshake(proxy.port, '/ws?x=1'), 401, 'no token, no upgrade');
        assert.equal(await handshake(proxy.port, `/ws?access_token=${BOOT}&x=1`), 101);
        const seen = last();
        assert.ok(seen.upgrade);
        assert.equal(seen.headers['x-orcheo-subject'], 'bootstrap');
        if (opts.stripsQueryToken) {
          assert.equal(seen.url, '/ws?x=1', 'the token is kept from the upstream');
          assert.equal(await handshake(proxy.port, `/ws?token=${BOOT}`), 101);
          assert.equal(last().url, '/ws', 'token= is removed too');
          const count = echo.seen.length;
          assert.equal(await handshake(proxy.port, `/ws?access_token=${BOOT}&access_token=${BOOT}`), 400, 'a repeated token parameter cannot be removed whole: refused');
          assert.equal(echo.seen.length, count);
        }
        else assert.equal(seen.url, `/ws?access_token=${BOOT}&x=1`, 'documented: this proxy cannot strip it');
      });

      test('authorization service unreachable: fail closed', async () => {
        const down = await start(found.bin!, { authzPort: await freePort(), upstreamPort: echo.port });
        try {
          const before = echo.seen.length;
          const r = await call(down.port, '/api/workflows/1', bearer(BOOT));
          assert.equal(r.status, opts.downStatus, r.body);
          assert.equal(echo.seen.length, before, 'nothing reached the upstream');
          if (name === 'nginx') assert.equal(code(r), 'auth.backend_unavailable');
        } finally {
          await down.close();
        }
      });
    });
  };
  suite('nginx', startNginx, { stripsQueryToken: true, stripsOtherOrcheoHeaders: false, downStatus: 503 });
  // Caddy answers 502 itself when forward_auth cannot reach the service (no status mapping there).
  suite('caddy', startCaddy, { stripsQueryToken: false, stripsOtherOrcheoHeaders: true, downStatus: 502 });
});
