/**
 * POST /api/admin/explain through the real HTTP server: who may call it, how a bad body is refused,
 * what each phase reports, and that explaining counts nothing (metrics, audit, usage) and never
 * shows or logs a credential.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { startTestApp, type TestApp } from './helpers/app';
import { BOOTSTRAP, explainCall, logLines, metricValue, policyFile, serviceToken } from './helpers/explain';

describe('POST /api/admin/explain', () => {
  const policy = policyFile();
  let t: TestApp;
  let reader = '';
  let expiring = '';
  const expiresAt = Date.parse('2099-01-02T03:04:05.000Z');

  before(async () => {
    t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_POLICY_FILE: policy.path, ORCHEO_AUTH_RATE_LIMIT_IP: '5', ORCHEO_AUTH_RATE_LIMIT_IDENTITY: '5', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOTSTRAP }, 'auto');
    reader = await serviceToken(t.app, 'reader', ['workflows:read'], ['ws-a']);
    expiring = await serviceToken(t.app, 'expiring', ['vault:read', 'workflows:read'], ['ws-a', 'ws-c'], expiresAt);
  });
  after(async () => {
    await t?.stop();
    policy.remove();
  });

  test('needs admin:tokens:read: 401 without a token, 403 with a token lacking it', async () => {
    const body = { method: 'GET', path: '/api/workflows' };
    const anon = await explainCall(t.app, body, '');
    assert.equal(anon.status, 401);
    assert.equal(anon.body.code, 'auth.missing_token');
    const weak = await explainCall(t.app, body, reader);
    assert.equal(weak.status, 403);
    assert.equal(weak.body.code, 'auth.missing_scope');
    assert.equal(typeof weak.body.request_id, 'string');
  });

  test('a bad body is a 400 naming the field, never echoing a header value', async () => {
    const cases: [unknown, string][] = [
      ['not json', 'request.malformed_body'],
      [{ path: '/x' }, 'explain.invalid_method'],
      [{ method: 'GET' }, 'explain.invalid_path'],
      [{ method: 'GET', path: 'api/no-slash' }, 'explain.invalid_path'],
      [{ method: 'G E T', path: '/x' }, 'explain.invalid_method'],
      [{ method: 'GET', path: '/x', ip: 'not-an-ip' }, 'explain.invalid_ip'],
      [{ method: 'GET', path: '/x', headers: ['a: b'] }, 'explain.invalid_headers'],
      [{ method: 'GET', path: '/x', headers: { 'bad name': 'v' } }, 'explain.invalid_headers'],
      [{ method: 'GET', path: '/x', headers: { 'x-secret': 'line\r\nbreak-s3cr3t' } }, 'explain.invalid_headers'],
      [{ method: 'GET', path: '/x', context: { enforce: false } }, 'explain.invalid_context'],
      [{ method: 'GET', path: '/x', token: '' }, 'explain.invalid_token'],
      [{ method: 'GET', path: '/x', token: 'a', headers: { Authorization: 'Bearer b' } }, 'explain.conflicting_token'],
      [{ method: 'GET', path: '/x', extra: 1 }, 'explain.unknown_field'],
    ];
    for (const [body, code] of cases) {
      const r = await explainCall(t.app, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.code, code, JSON.stringify(body));
      assert.ok(!r.text.includes('s3cr3t'));
    }
  });

  test('a scope denial: every phase, and what would change it', async () => {
    const r = await explainCall(t.app, { method: 'get', path: '/api/credentials/db?x=1', token: expiring, ip: '203.0.113.7', headers: { 'x-request-id': 'explain-1' } });
    assert.equal(r.status, 200);
    const e = r.body;
    assert.equal(e.request_id, 'explain-1');
    assert.deepEqual(e.request, { method: 'GET', path: '/api/credentials/db', client_ip: '203.0.113.7' });
    assert.deepEqual(e.credential, { found: true, where: 'header', name: 'authorization', kind: 'service_token', accepted: true, code: null });
    assert.deepEqual(e.identity, { type: 'service', subject: 'expiring', source: 'service_token', scopes: ['vault:read', 'workflows:read'], workspaces: ['ws-a', 'ws-c'], expires_at: '2099-01-02T03:04:05.000Z' });
    assert.equal(e.decision.allow, true, 'this token holds vault:read');
    const d = await explainCall(t.app, { method: 'GET', path: '/api/credentials/db', token: reader, ip: '203.0.113.7' });
    assert.deepEqual(d.body.rule, { matched: 'rules[0]', position: 0, pattern: '/api/credentials/**', policy: policy.path, context_extensions: false });
    assert.deepEqual(d.body.requirement, { auth: 'required', scopes: ['vault:read'], workspace: null, enforce: true });
    assert.deepEqual(d.body.decision, { allow: false, status: 403, code: 'auth.missing_scope', message: 'Missing required scopes: vault:read', shadow: false });
    assert.deepEqual(d.body.would_change, ['needs vault:read; the token has workflows:read']);
    assert.deepEqual(d.body.rate_limits.windows.map((w: any) => [w.window, w.subject, w.count, w.limit, w.blocked]), [
      ['ip', '203.0.113.7', 0, 5, false],
      ['identity', 'st:reader', 1, 5, false], // the refused admin call of the first test
    ]);
  });

  test('a workspace denial, a shadow rule, context extensions and the default', async () => {
    const ws = (await explainCall(t.app, { method: 'POST', path: '/api/workspaces/ws-b/runs', token: reader })).body;
    assert.equal(ws.decision.code, 'auth.workspace_forbidden');
    assert.deepEqual(ws.would_change, ['workspace ws-b; the token has ws-a']);
    const shadow = (await explainCall(t.app, { method: 'GET', path: '/api/beta/x', token: reader })).body;
    assert.deepEqual(shadow.decision, { allow: true, status: 200, code: 'auth.missing_scope', message: 'Missing required scopes: vault:write', shadow: true });
    assert.equal(shadow.requirement.enforce, false);
    const ext = (await explainCall(t.app, { method: 'GET', path: '/other', token: reader, context: { required_scopes: 'vault:read' } })).body;
    assert.equal(ext.rule.matched, 'default+context_extensions');
    assert.equal(ext.rule.position, null);
    assert.equal(ext.rule.context_extensions, true);
    assert.equal(ext.decision.code, 'auth.missing_scope');
    const none = (await explainCall(t.app, { method: 'GET', path: '/api/workflows' })).body;
    assert.deepEqual(none.credential, { found: false, where: null, name: null, kind: null, accepted: null, code: null });
    assert.equal(none.decision.code, 'auth.missing_token');
    const bad = (await explainCall(t.app, { method: 'GET', path: '/api/workflows', headers: { authorization: 'Basic abc' } })).body;
    assert.equal(bad.credential.code, 'auth.invalid_scheme');
    const jwt = (await explainCall(t.app, { method: 'GET', path: '/api/workflows', token: 'aaa.bbb.ccc' })).body;
    assert.equal(jwt.credential.kind, 'jwt');
    assert.equal(jwt.credential.accepted, false);
    const query = (await explainCall(t.app, { method: 'GET', path: `/ws?access_token=${reader}`, headers: { upgrade: 'websocket', connection: 'upgrade' } })).body;
    assert.deepEqual([query.credential.where, query.credential.name, query.decision.allow], ['query', 'access_token', true]);
  });

  test('explaining counts nothing: no check metric, no audit failure, no usage; no credential in the answer or the logs', async () => {
    const checks = () => metricValue(t.app, 'orcheo_authz_checks_total', { code: 'auth.missing_scope' });
    const allows = () => metricValue(t.app, 'orcheo_authz_checks_total', { decision: 'allow' });
    const bootstrapUses = () => metricValue(t.app, 'orcheo_authz_bootstrap_token_uses_total', { accepted: 'true' });
    const auditee = await serviceToken(t.app, 'auditee', ['workflows:read'], []);
    const [c0, a0] = [await checks(), await allows()];
    const replies: string[] = [];
    for (let i = 0; i < 3; i++) replies.push((await explainCall(t.app, { method: 'GET', path: '/api/credentials/db', token: auditee })).text);
    const b0 = await bootstrapUses();
    replies.push((await explainCall(t.app, { method: 'GET', path: '/api/credentials/db', token: BOOTSTRAP })).text);
    assert.equal(await checks(), c0, 'the explained denials are not counted');
    // Admin authentication is not an Envoy check (it has no metrics observer), and the explained request is not one either.
    assert.equal(await allows(), a0);
    assert.equal(await bootstrapUses(), b0 + 1, 'the admin caller used the bootstrap token once; the explained request did not count');
    await t.app.audit.flush();
    const rows = await t.app.db.query<{ n: string }>("SELECT count(*)::text AS n FROM auth_audit_events WHERE event = 'auth.failure' AND token_id = 'auditee'");
    assert.equal(rows[0]?.n, '0', 'no audit failure for the explained denial');
    // Control: the same request checked for real is audited, so the query above can see such a row.
    await t.client.check({ path: '/api/credentials/db', headers: { authorization: `Bearer ${auditee}` } });
    await t.app.audit.flush();
    const after = await t.app.db.query<{ n: string }>("SELECT count(*)::text AS n FROM auth_audit_events WHERE event = 'auth.failure' AND token_id = 'auditee'");
    assert.equal(after[0]?.n, '1');
    for (const text of replies) {
      assert.ok(!text.includes(auditee) && !text.includes(BOOTSTRAP), 'no credential in the explanation');
    }
    const logs = t.logs.join('');
    assert.ok(![reader, expiring, auditee, BOOTSTRAP].some((s) => logs.includes(s)), 'no credential in the logs');
    const lines = logLines(t.logs).filter((l) => l.msg === 'request denied' && l.subject === 'auditee');
    assert.equal(lines.length, 1, 'a decision line for the real check only, none for the explained requests');
  });
});

describe('explaining a JWT leaves the verified-token cache as it was', () => {
  const SECRET = 'explain-jwt-secret-0123456789abcdef0123456789';
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_JWT_SECRET: SECRET, ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOTSTRAP }, 'auto');
  });
  after(() => t?.stop());

  test('no entry added, no hit or miss counted; the same token checked for real is cached (the control)', async () => {
    const token = await new SignJWT({ sub: 'explained-user', scope: 'workflows:read', workspace_ids: ['ws-1'] }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
    const cache = async (): Promise<number[]> => Promise.all(['orcheo_authz_jwt_cache_size', 'orcheo_authz_jwt_cache_hits_total', 'orcheo_authz_jwt_cache_misses_total'].map((m) => metricValue(t.app, m)));
    const before0 = await cache();
    for (let i = 0; i < 2; i++) {
      const r = (await explainCall(t.app, { method: 'GET', path: '/api/workflows', token })).body;
      assert.deepEqual([r.credential.kind, r.credential.accepted, r.decision.allow], ['jwt', true, true], JSON.stringify(r));
    }
    assert.deepEqual(await cache(), before0, 'size, hits, misses after two explanations');
    const real = await t.client.check({ path: '/api/workflows', headers: { authorization: `Bearer ${token}` } });
    assert.equal(real.status.code, 0, JSON.stringify(real.status));
    const [size, hits, misses] = await cache();
    assert.deepEqual([size, hits, misses], [before0[0]! + 1, before0[1]!, before0[2]! + 1], 'the real check missed once and cached the token');
    // Explaining a cached token reads the entry without counting a hit.
    assert.equal((await explainCall(t.app, { method: 'GET', path: '/api/workflows', token })).body.decision.allow, true);
    assert.deepEqual(await cache(), [size, hits, misses]);
  });
});
