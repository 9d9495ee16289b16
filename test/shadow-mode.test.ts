/**
 * Shadow mode through the real server (gRPC Check, /metrics, captured log lines): a rule with
 * `enforce: false`, the context extension `enforce=false` and ORCHEO_AUTH_DRY_RUN turn a would-be
 * denial into an allow that is counted, logged and carried in dynamic_metadata; rate limits still count.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from './helpers/app';
import { deniedBody, deniedStatus, okHeaders, type CheckResult } from './helpers/grpc-client';
import { BOOTSTRAP, logLines, metricValue, policyFile, serviceToken } from './helpers/explain';

const meta = (r: CheckResult): Record<string, unknown> => Object.fromEntries(Object.entries(r.dynamic_metadata?.fields ?? {}).map(([k, v]) => [k, v.stringValue ?? v.boolValue]));
const lineFor = (t: TestApp, id: string) => logLines(t.logs).find((l) => l.request_id === id && (l.msg === 'would deny' || l.msg === 'request denied'));

describe('shadow rules', () => {
  const policy = policyFile();
  let t: TestApp;
  let reader = '';

  before(async () => {
    t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_POLICY_FILE: policy.path, ORCHEO_AUTH_RATE_LIMIT_IP: '2', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOTSTRAP }, 'auto');
    reader = await serviceToken(t.app, 'reader', ['workflows:read'], ['ws-a']);
  });
  after(async () => {
    await t?.stop();
    policy.remove();
  });

  test('a would-be scope denial is allowed with the identity, counted, logged and carried in metadata', async () => {
    const before = await metricValue(t.app, 'orcheo_authz_shadow_denials_total', { code: 'auth.missing_scope' });
    for (let i = 0; i < 2; i++) {
      const r = await t.client.check({ path: '/api/beta/report', sourceIp: `198.51.100.${10 + i}`, headers: { authorization: `Bearer ${reader}`, 'x-request-id': `shadow-scope-${i}` } });
      assert.ok(r.ok_response, 'allowed');
      assert.equal(okHeaders(r)['x-orcheo-subject'], 'reader', 'the upstream receives the identity that was established');
      assert.equal(meta(r).shadow_code, 'auth.missing_scope');
      const line = lineFor(t, `shadow-scope-${i}`);
      assert.equal(line?.msg, 'would deny');
      assert.equal(line?.level, 30, 'logged at info');
      assert.equal(line?.code, 'auth.missing_scope');
      assert.equal(line?.pattern, '/api/beta/**');
      assert.equal(line?.ip, `198.51.100.${10 + i}`);
    }
    assert.equal(await metricValue(t.app, 'orcheo_authz_shadow_denials_total', { code: 'auth.missing_scope' }), before + 2);
  });

  test('a would-be 401 is allowed as anonymous', async () => {
    const r = await t.client.check({ path: '/api/beta/x', sourceIp: '198.51.100.20', headers: { 'x-request-id': 'shadow-anon' } });
    assert.ok(r.ok_response);
    assert.equal(okHeaders(r)['x-orcheo-authenticated'], 'false');
    assert.equal(meta(r).shadow_code, 'auth.missing_token');
    assert.equal(lineFor(t, 'shadow-anon')?.code, 'auth.missing_token');
  });

  test('rate limits still count shadow failures, and a shadow 429 passes no identity', async () => {
    const ip = '203.0.113.40';
    for (let i = 0; i < 2; i++) {
      const r = await t.client.check({ path: '/api/beta/x', sourceIp: ip, headers: { authorization: 'Bearer not-a-token' } });
      assert.equal(meta(r).shadow_code, 'auth.invalid_token');
    }
    const limited = await t.client.check({ path: '/api/beta/x', sourceIp: ip, headers: { authorization: `Bearer ${reader}`, 'x-request-id': 'shadow-429' } });
    assert.ok(limited.ok_response, 'shadow allows even the 429');
    assert.equal(meta(limited).shadow_code, 'auth.rate_limited.ip');
    assert.equal(okHeaders(limited)['x-orcheo-authenticated'], 'false', 'a guessed token must not reach the upstream past the limiter');
    assert.equal(await metricValue(t.app, 'orcheo_authz_shadow_denials_total', { code: 'auth.rate_limited.ip' }), 1);
    // The two shadow failures filled the window: an enforced route from that IP is refused.
    const enforced = await t.client.check({ path: '/api/workflows/w1', sourceIp: ip, headers: { authorization: `Bearer ${reader}` } });
    assert.equal(deniedBody(enforced).code, 'auth.rate_limited.ip');
  });

  test('the context extension enforce=false makes an enforced route shadow; anything else does not', async () => {
    const base = { path: '/api/credentials/c1', sourceIp: '198.51.100.30', headers: { authorization: `Bearer ${reader}` } };
    const shadow = await t.client.check({ ...base, contextExtensions: { enforce: 'false' } });
    assert.equal(meta(shadow).shadow_code, 'auth.missing_scope');
    for (const v of ['true', 'no', 'fasle']) assert.equal(deniedStatus(await t.client.check({ ...base, contextExtensions: { enforce: v } })), 403, `enforce=${v}`);
  });

  test('deny lines carry code, ip, pattern, workspace and request id, never the token', async () => {
    const r = await t.client.check({ path: '/api/workspaces/ws-b/runs', sourceIp: '198.51.100.50', headers: { authorization: `Bearer ${reader}`, 'x-request-id': 'deny-ws' } });
    assert.equal(deniedBody(r).code, 'auth.workspace_forbidden');
    const line = lineFor(t, 'deny-ws');
    assert.equal(line?.msg, 'request denied');
    assert.deepEqual(
      { code: line?.code, ip: line?.ip, pattern: line?.pattern, rule: line?.rule, workspace: line?.workspace, subject: line?.subject },
      { code: 'auth.workspace_forbidden', ip: '198.51.100.50', pattern: '/api/workspaces/{workspace_id}/**', rule: 'rules[2]', workspace: 'ws-b', subject: 'reader' },
    );
    const all = t.logs.join('');
    assert.ok(!all.includes(reader), 'no token in any log line');
    assert.ok(!all.includes(BOOTSTRAP), 'no bootstrap secret in any log line');
  });

  test('the decision id is in the admin deny body and in the log line', async () => {
    const res = await fetch(`http://127.0.0.1:${t.app.httpPort}/api/admin/service-tokens`, { headers: { authorization: `Bearer ${reader}`, 'x-request-id': 'admin-deny-1' } });
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as { request_id: string }).request_id, 'admin-deny-1');
    assert.equal(lineFor(t, 'admin-deny-1')?.code, 'auth.missing_scope');
  });

  test('the decision id reaches the gRPC deny body and dynamic_metadata', async () => {
    const r = await t.client.check({ path: '/api/credentials/c1', headers: { authorization: `Bearer ${reader}`, 'x-request-id': 'grpc-id-1' } });
    assert.equal((deniedBody(r) as { request_id?: string }).request_id, 'grpc-id-1');
    const ok = await t.client.check({ path: '/api/beta/x', headers: { authorization: `Bearer ${reader}`, 'x-request-id': 'grpc-id-2' } });
    assert.equal(meta(ok).decision_id, 'grpc-id-2');
  });
});

describe('ORCHEO_AUTH_DRY_RUN', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_DRY_RUN: 'true' }, 'auto');
  });
  after(async () => t?.stop());

  test('every route is shadow: would-be denials are allowed and counted', async () => {
    const token = await serviceToken(t.app, 'dry', [], []);
    const r = await t.client.check({ path: '/api/credentials/c1', headers: { authorization: `Bearer ${token}` } });
    assert.equal(meta(r).shadow_code, 'auth.missing_scope');
    assert.equal(okHeaders(r)['x-orcheo-subject'], 'dry');
    assert.equal(await metricValue(t.app, 'orcheo_authz_shadow_denials_total', { code: 'auth.missing_scope' }), 1);
    assert.equal(await metricValue(t.app, 'orcheo_authz_checks_total', { decision: 'deny' }), 0, 'no denial counted');
  });

  test('a request that cannot be read is still denied: no rule was evaluated', async () => {
    const r = await t.client.check({ path: '/api/credentials%00/c-1' });
    assert.equal(deniedBody(r).code, 'auth.invalid_request');
  });
});
