/**
 * The HTTP authorization interface driven by a real HTTP client on loopback: forward-auth and Envoy
 * http_service styles, bad forwarded URIs, where route hints may come from, spoofed identity
 * headers, and the client-address rules.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from './helpers/app';
import { sign } from './helpers/jwks-server';
import { call, type HttpAnswer } from './helpers/proxy';

const BOOT = 'boot-strap-token-for-http-authz-tests';
const SECRET = 'http-authz-test-hs256-secret-0123456789';

const json = (a: HttpAnswer): { code?: string; message?: string } => JSON.parse(a.body) as { code?: string; message?: string };

describe('HTTP authorization interface', async () => {
  let t: TestApp;
  let port: number;
  before(async () => {
    t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT, ORCHEO_AUTH_BOOTSTRAP_TOKEN_SCOPES: 'workflows:read', ORCHEO_AUTH_JWT_SECRET: SECRET }, 'auto');
    port = t.app.httpAuthzPort;
  });
  after(async () => t?.stop());
  const auth = { authorization: `Bearer ${BOOT}` };

  test('forward-auth style: the forwarded method and URI are what is checked', async () => {
    const ok = await call(port, '/check', { ...auth, 'x-forwarded-uri': '/api/workflows/1?x=1', 'x-forwarded-method': 'GET' });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['x-orcheo-subject'], 'bootstrap');
    assert.equal(ok.headers['x-orcheo-scopes'], 'workflows:read');
    const write = await call(port, '/check', { ...auth, 'x-original-uri': '/api/workflows/1', 'x-original-method': 'POST' });
    assert.equal(write.status, 403, 'the forwarded method, not the call\'s own GET');
    assert.equal(json(write).code, 'auth.missing_scope');
    assert.equal(write.headers['www-authenticate'], 'Bearer error="insufficient_scope"');
  });

  test('a call counts in the same metrics as a gRPC Check', async () => {
    const count = async (): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${t.app.httpPort}/metrics`)).text();
      return Number(/^orcheo_authz_checks_total\{decision="deny",code="auth.missing_token"\} (\d+)/m.exec(text)?.[1] ?? 0);
    };
    const before = await count();
    await call(port, '/check', { 'x-forwarded-uri': '/api/workflows' });
    await t.client.check({ path: '/api/workflows' });
    assert.equal(await count(), before + 2);
  });

  test('Envoy http_service style: the call\'s own method and path', async () => {
    assert.equal((await call(port, '/api/workflows/1', auth)).status, 200);
    const post = await call(port, '/api/workflows/1', auth, 'POST', 'ignored body');
    assert.equal(post.status, 403);
    const none = await call(port, '/api/workflows/1');
    assert.equal(none.status, 401);
    assert.deepEqual(Object.keys(json(none)).sort(), ['code', 'message', 'request_id']);
    assert.equal(json(none).code, 'auth.missing_token');
    assert.equal(none.headers['www-authenticate'], 'Bearer');
    assert.equal(none.headers['content-type'], 'application/json');
  });

  test('a missing or malformed forwarded URI is a 400, never an allow', async () => {
    for (const uri of ['', 'api/workflows', 'http://evil/api', '/a b', '/a\tb', `/${'a'.repeat(9 * 1024)}`]) {
      const r = await call(port, '/check', { ...auth, 'x-forwarded-uri': uri }).catch((e: Error) => ({ status: -1, body: e.message, headers: {} }));
      // Node's client refuses to send a header with a control character; the server never sees it.
      if (r.status === -1) continue;
      assert.equal(r.status, 400, `uri ${JSON.stringify(uri.slice(0, 20))}`);
      assert.equal(json(r).code, 'auth.invalid_request');
    }
    const method = await call(port, '/check', { ...auth, 'x-forwarded-uri': '/api', 'x-forwarded-method': 'G(T' });
    assert.equal(method.status, 400);
    const disagree = await call(port, '/check', { ...auth, 'x-forwarded-uri': '/api/workflows/1', 'x-original-uri': '/public' });
    assert.equal(disagree.status, 400, 'two spellings that disagree: neither is believed');
    assert.match(json(disagree).message!, /disagree/);
    const methods = await call(port, '/check', { ...auth, 'x-forwarded-uri': '/x', 'x-forwarded-method': 'POST', 'x-original-method': 'GET' });
    assert.equal(methods.status, 400);
    assert.equal((await call(port, '/check', { ...auth, 'x-forwarded-uri': '/x', 'x-original-uri': '/x' })).status, 200, 'agreeing spellings are fine');
  });

  test('a forwarded URI sent twice is a 400 (over a bare socket)', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => s.end(`GET /check HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${BOOT}\r\nx-forwarded-uri: /api/workflows/1\r\nx-forwarded-uri: /public\r\nconnection: close\r\n\r\n`));
      let out = '';
      s.on('data', (c) => (out += c.toString()));
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.1 400 /);
    assert.match(reply, /x-forwarded-uri sent more than once/);
  });

  test('a raw control character in the forwarded URI is a 400 (sent over a bare socket)', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => s.end(`GET /check HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${BOOT}\r\nx-forwarded-uri: /api\x01x\r\nconnection: close\r\n\r\n`));
      let out = '';
      s.on('data', (c) => (out += c.toString()));
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
    // Node's parser may refuse the header itself (400 from the server); either way never a 200.
    assert.match(reply, /^HTTP\/1\.1 400 /);
  });

  test('route hints come only from the authorization URL\'s own query string', async () => {
    const hinted = await call(port, '/check?scopes=vault:write', { ...auth, 'x-forwarded-uri': '/anything' });
    assert.equal(hinted.status, 403, 'the proxy\'s configured hint applies');
    const fromClientUri = await call(port, '/check', { ...auth, 'x-forwarded-uri': '/anything?scopes=vault:write&auth=public' });
    assert.equal(fromClientUri.status, 200, 'the checked request\'s own query is not a hint');
    const open = await call(port, '/check?auth=public', { 'x-forwarded-uri': '/public' });
    assert.equal(open.status, 200);
    assert.equal(open.headers['x-orcheo-authenticated'], 'false');
    const envoyStyle = await call(port, '/public?auth=public');
    assert.equal(envoyStyle.status, 401, 'in Envoy style the query belongs to the client');
  });

  test('spoofed x-orcheo-* headers are not trusted and are overwritten', async () => {
    const r = await call(port, '/check', { ...auth, 'x-forwarded-uri': '/x', 'x-orcheo-subject': 'admin', 'x-orcheo-scopes': 'admin:tokens:write' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-orcheo-subject'], 'bootstrap');
    assert.equal(r.headers['x-orcheo-scopes'], 'workflows:read');
    const anon = await call(port, '/check', { 'x-forwarded-uri': '/x', 'x-orcheo-authenticated': 'true' });
    assert.equal(anon.status, 401);
  });

  test('Envoy style: client x-orcheo-* names the service does not set are listed for Envoy to remove', async () => {
    const r = await call(port, '/x', { ...auth, 'x-orcheo-forged': '1', 'x-orcheo-subject': 'admin' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-envoy-auth-headers-to-remove'], 'x-orcheo-forged');
    const fwd = await call(port, '/check', { ...auth, 'x-forwarded-uri': '/x', 'x-orcheo-forged': '1' });
    assert.equal(fwd.headers['x-envoy-auth-headers-to-remove'], undefined, 'forward-auth proxies never read it');
  });

  test('deny_body=header repeats the JSON body in a header, for nginx (forward-auth style only)', async () => {
    const r = await call(port, '/check?deny_body=header', { 'x-original-uri': '/x' });
    assert.equal(r.status, 401);
    assert.equal(r.headers['x-orcheo-deny-body'], r.body);
    const bad = await call(port, '/check?deny_body=header', { 'x-original-uri': 'nope' });
    assert.equal(bad.headers['x-orcheo-deny-body'], bad.body);
    assert.equal((await call(port, '/x?deny_body=header')).headers['x-orcheo-deny-body'], undefined);
  });

  test('a WebSocket handshake sent as is is decided, never upgraded', async () => {
    const ws = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' };
    const denied = await call(port, '/check', { ...ws, 'x-forwarded-uri': '/ws?access_token=wrong' });
    assert.equal(denied.status, 401);
    assert.equal(json(denied).code, 'auth.invalid_token', 'the query token was read: the handshake was recognised');
    const ok = await call(port, '/check', { ...ws, 'x-forwarded-uri': `/ws?access_token=${BOOT}` });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['x-orcheo-subject'], 'bootstrap');
    const plain = await call(port, '/check', { 'x-forwarded-uri': `/ws?access_token=${BOOT}` });
    assert.equal(plain.status, 401, 'a query token outside a handshake is no credential');
  });

  test('a non-Latin-1 identity value is sent as its UTF-8 bytes, never a crash', async () => {
    const jwt = await sign({ sub: 'δοκιμή-日本', exp: Math.floor(Date.now() / 1000) + 600 }, { alg: 'HS256', secret: SECRET });
    const r = await call(port, '/check', { authorization: `Bearer ${jwt}`, 'x-forwarded-uri': '/x' });
    assert.equal(r.status, 200);
    assert.equal(Buffer.from(String(r.headers['x-orcheo-subject']), 'latin1').toString('utf8'), 'δοκιμή-日本');
  });

  test('a large body is not read: the connection is reset long before it is sent, the server keeps serving', async () => {
    const TOTAL = 64 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 120);
    const sent = await new Promise<number>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/api/workflows/1', method: 'POST', agent: false, headers: { ...auth, 'content-length': String(TOTAL) } });
      req.on('response', (res) => res.resume());
      let written = 0;
      let done = false;
      const finish = (): void => {
        if (!done) resolve(written);
        done = true;
      };
      req.on('error', finish);
      req.on('close', finish);
      const pump = (): void => {
        while (!done && written < TOTAL) {
          written += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        if (!done) req.end();
      };
      pump();
    });
    assert.ok(sent < TOTAL, `the whole ${TOTAL}-byte body was accepted`);
    assert.equal((await call(port, '/api/workflows/1', auth)).status, 200);
  });
});

describe('HTTP authorization interface: client address', async () => {
  const bad = { authorization: 'Bearer bad-token' };
  const limited = async (env: Record<string, string>, fn: (port: number) => Promise<void>): Promise<void> => {
    const t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_RATE_LIMIT_IP: '1', ...env }, 'auto');
    try {
      await fn(t.app.httpAuthzPort);
    } finally {
      await t.stop();
    }
  };

  test('x-forwarded-for from an untrusted peer is ignored', async () => {
    await limited({ ORCHEO_AUTH_XFF_TRUSTED_HOPS: '1' }, async (port) => {
      assert.equal((await call(port, '/check', { ...bad, 'x-forwarded-uri': '/', 'x-forwarded-for': '192.0.2.1' })).status, 401);
      const r = await call(port, '/check', { ...bad, 'x-forwarded-uri': '/', 'x-forwarded-for': '192.0.2.2' });
      assert.equal(r.status, 429);
      assert.equal(json(r).message, 'Too many authentication attempts from IP 127.0.0.1');
      assert.ok(Number(r.headers['retry-after']) >= 1);
    });
  });

  test('from a trusted peer, the entry chosen by the trusted hops counted from the right', async () => {
    await limited({ ORCHEO_AUTH_TRUSTED_PROXIES: '127.0.0.1', ORCHEO_AUTH_XFF_TRUSTED_HOPS: '1' }, async (port) => {
      const xff = (chain: string) => ({ ...bad, 'x-forwarded-uri': '/', 'x-forwarded-for': chain });
      assert.equal((await call(port, '/check', xff('198.51.100.9, 192.0.2.1, 10.0.0.1'))).status, 401);
      const r = await call(port, '/check', xff('203.0.113.5, 192.0.2.1, 10.0.0.2'));
      assert.equal(r.status, 429);
      assert.equal(json(r).message, 'Too many authentication attempts from IP 192.0.2.1', 'second from the right; the leftmost is client-written');
      assert.equal((await call(port, '/check', xff('192.0.2.7, 10.0.0.1'))).status, 401, 'another client is not blamed');
    });
    await limited({ ORCHEO_AUTH_TRUSTED_PROXIES: '127.0.0.0/8' }, async (port) => {
      assert.equal((await call(port, '/api', { ...bad, 'x-forwarded-for': 'forged, 192.0.2.3' })).status, 401);
      const r = await call(port, '/api', { ...bad, 'x-forwarded-for': '192.0.2.3' });
      assert.equal(json(r).message, 'Too many authentication attempts from IP 192.0.2.3', 'hops 0: the entry the proxy appended (Envoy style too)');
    });
  });
});

describe('HTTP authorization interface: configuration', () => {
  test('off disables the listener; a bad address or prefix is a startup error naming the variable', async () => {
    const { loadConfig } = await import('../src/config/load');
    assert.equal(loadConfig({ ORCHEO_AUTH_HTTP_AUTHZ_ADDR: 'OFF' }).httpAuthz.addr, undefined);
    assert.deepEqual(loadConfig({}).httpAuthz, { addr: { host: '0.0.0.0', port: 9192 }, pathPrefix: '' });
    assert.throws(() => loadConfig({ ORCHEO_AUTH_HTTP_AUTHZ_ADDR: 'nope' }), /ORCHEO_AUTH_HTTP_AUTHZ_ADDR: expected host:port/);
    for (const bad of ['authz', '/authz/', '/a?b', '/a%2f', '/a b'])
      assert.throws(() => loadConfig({ ORCHEO_AUTH_HTTP_AUTHZ_PATH_PREFIX: bad }), /ORCHEO_AUTH_HTTP_AUTHZ_PATH_PREFIX: expected a path prefix/, bad);
    const t = await startTestApp({ ORCHEO_AUTH_HTTP_AUTHZ_ADDR: 'off' }, 'auto');
    assert.equal(t.app.httpAuthzPort, 0);
    await t.stop();
  });

  test('the path prefix is stripped in Envoy style; a path outside it is a 400', async () => {
    const t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT, ORCHEO_AUTH_BOOTSTRAP_TOKEN_SCOPES: 'workflows:read', ORCHEO_AUTH_HTTP_AUTHZ_PATH_PREFIX: '/authz' }, 'auto');
    try {
      const port = t.app.httpAuthzPort;
      const auth = { authorization: `Bearer ${BOOT}` };
      assert.equal((await call(port, '/authz/api/workflows/1', auth)).status, 200);
      assert.equal((await call(port, '/authz/api/workflows/1', auth, 'DELETE')).status, 403, 'checked as /api/workflows/1');
      assert.equal((await call(port, '/authzapi/workflows', auth)).status, 400);
      assert.equal((await call(port, '/api/workflows/1', auth)).status, 400);
    } finally {
      await t.stop();
    }
  });
});
