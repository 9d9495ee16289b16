/**
 * The admin API's token endpoints: create, show, list, validation, routing and body limits.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, appFor, assertSecurityHeaders, BOOT, checkWith, sql } from './helpers/admin-api';
import { okHeaders } from './helpers/grpc-client';
import { adminRequest } from './helpers/spawn';

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
