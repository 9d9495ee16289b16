/**
 * `orcheo-authz explain` as a user runs it: the real CLI process against the real server. The token
 * comes from --token-env and never appears in the CLI's output or the server's logs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from './helpers/app';
import { deniedBody } from './helpers/grpc-client';
import { BOOTSTRAP, policyFile, serviceToken } from './helpers/explain';
import { runCli, tempHome, type CliResult } from './helpers/spawn';

const FIELDS = ['request_id', 'request', 'mode', 'dry_run', 'note', 'credential', 'identity', 'rule', 'requirement', 'rate_limits', 'decision', 'would_change'];

describe('orcheo-authz explain', () => {
  const policy = policyFile();
  const home = tempHome();
  let t: TestApp;
  let reader = '';
  const secrets = (): string[] => [reader, BOOTSTRAP];
  const cli = (args: string[], env: Record<string, string> = {}): Promise<CliResult> =>
    runCli(['explain', ...args], { ORCHEO_API_URL: `http://127.0.0.1:${t.app.httpPort}`, ORCHEO_SERVICE_TOKEN: BOOTSTRAP, READER_TOKEN: reader, ...env }, { home: home.dir });
  const clean = (r: CliResult): void => {
    for (const s of secrets()) assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), 'no credential in the CLI output');
  };

  before(async () => {
    t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_POLICY_FILE: policy.path, ORCHEO_AUTH_RATE_LIMIT_IP: '3', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOTSTRAP }, 'auto');
    reader = await serviceToken(t.app, 'reader', ['workflows:read'], ['ws-a']);
  });
  after(async () => {
    const logs = t?.logs.join('') ?? '';
    await t?.stop();
    policy.remove();
    home.remove();
    for (const s of secrets()) assert.ok(!logs.includes(s), 'no credential in the server logs');
  });

  test('a scope denial, for a person', async () => {
    const r = await cli(['--method', 'GET', '--path', '/api/credentials/db', '--token-env', 'READER_TOKEN', '--ip', '203.0.113.7', '--header', 'x-request-id: cli-1']);
    assert.equal(r.code, 0, r.stderr);
    clean(r);
    const line = (label: string) => r.stdout.split('\n').find((l) => l.startsWith(label))?.slice(label.length).trim();
    assert.equal(line('Request id'), 'cli-1');
    assert.equal(line('Request '), 'GET /api/credentials/db from 203.0.113.7');
    assert.equal(line('Credential'), 'header authorization, service token: accepted');
    assert.equal(line('Identity'), 'reader (service, service_token); scopes workflows:read; workspaces ws-a; expires never');
    assert.equal(line('Rule'), `rule 0 /api/credentials/** (policy ${policy.path})`);
    assert.equal(line('Requires'), 'auth required; scopes vault:read; workspace -; enforced');
    assert.equal(line('Decision'), 'DENY 403 auth.missing_scope: Missing required scopes: vault:read');
    assert.equal(line('To change'), 'needs vault:read; the token has workflows:read');
  });

  test('--json is the API answer with its stable fields; a workspace denial and a context extension', async () => {
    const r = await cli(['--method', 'POST', '--path', '/api/workspaces/ws-b/runs', '--token-env', 'READER_TOKEN', '--context', 'enforce=false', '--json']);
    assert.equal(r.code, 0, r.stderr);
    clean(r);
    const e = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(e), FIELDS);
    assert.deepEqual(e.decision, { allow: true, status: 200, code: 'auth.workspace_forbidden', message: 'Workspace access denied', shadow: true });
    assert.deepEqual(e.would_change, ['workspace ws-b; the token has ws-a']);
    assert.equal(e.rule.matched, 'rules[2]+context_extensions');
  });

  test('a rate-limited IP shows its full window', async () => {
    for (let i = 0; i < 3; i++) await t.client.check({ sourceIp: '198.51.100.9', headers: { authorization: 'Bearer wrong' } });
    const r = await cli(['--method', 'GET', '--path', '/api/workflows', '--header', 'Authorization: Bearer wrong', '--ip', '198.51.100.9']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Rate limits +IP 198\.51\.100\.9: 3\/3 failures, full until \S+ \(retry after \d+ s\)$/m);
    assert.match(r.stdout, /^Decision +DENY 429 auth\.rate_limited\.ip: Too many authentication attempts from IP 198\.51\.100\.9$/m);
    assert.match(r.stdout, /^To change +window for 198\.51\.100\.9 full \(3\/3 failures\) until \d\d:\d\d:\d\d UTC$/m);
    assert.equal(deniedBody(await t.client.check({ sourceIp: '198.51.100.9', headers: { authorization: 'Bearer wrong' } })).code, 'auth.rate_limited.ip', 'the check agrees');
  });

  test('usage errors exit 2 with a clear message; a refusal exits 1', async () => {
    const unset = await cli(['--method', 'GET', '--path', '/x', '--token-env', 'NOT_SET_ANYWHERE']);
    assert.equal(unset.code, 2);
    assert.match(unset.stderr, /--token-env NOT_SET_ANYWHERE: the variable is not set or empty/);
    const header = await cli(['--method', 'GET', '--path', '/x', '--header', 'no colon here']);
    assert.equal(header.code, 2);
    assert.match(header.stderr, /expected 'name: value'/);
    const missing = await cli(['--path', '/x']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--method/);
    const badIp = await cli(['--method', 'GET', '--path', '/x', '--ip', 'nope']);
    assert.equal(badIp.code, 1);
    assert.match(badIp.stderr, /ip must be an IPv4 or IPv6 address \(explain\.invalid_ip\)/);
    const weak = await cli(['--method', 'GET', '--path', '/x'], { ORCHEO_SERVICE_TOKEN: reader });
    assert.equal(weak.code, 1);
    assert.match(weak.stderr, /auth\.missing_scope/);
    clean(weak);
  });
});
