import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type RequestListener } from 'node:http';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { Client } from 'pg';
import { AuthzClient, deniedBody, deniedStatus, okHeaders } from './helpers/grpc-client';
import { createTestSchema, PG_SKIP_REASON, pgReachable, type TestSchema } from './helpers/pg';
import { adminRequest, closedPort, MAIN_JS, runCli, startServer, tempHome, type CliResult, type ServerProcess } from './helpers/spawn';

const WARNING = '⚠ Store this secret securely. It will not be shown again.';

interface Env {
  schema: TestSchema;
  home: string;
  /** Starts a server on this test's schema; stopped after the test. */
  server(env?: Record<string, string | undefined>): Promise<ServerProcess>;
  grpc(s: ServerProcess): AuthzClient;
  cli(args: string[], env?: Record<string, string | undefined>, script?: string): Promise<CliResult>;
  sql<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
}

async function setup(t: TestContext): Promise<Env | undefined> {
  if (!(await pgReachable())) {
    t.skip(PG_SKIP_REASON);
    return undefined;
  }
  const schema = await createTestSchema('cli');
  const home = tempHome();
  const servers: ServerProcess[] = [];
  const clients: AuthzClient[] = [];
  t.after(async () => {
    for (const c of clients) c.close();
    for (const s of servers) await s.stop();
    await schema.drop();
    home.remove();
  });
  return {
    schema,
    home: home.dir,
    async server(env = {}) {
      const s = await startServer({ ORCHEO_AUTH_DATABASE_URL: schema.url, ...env }, { home: home.dir });
      servers.push(s);
      return s;
    },
    grpc(s) {
      const c = new AuthzClient(s.grpcPort);
      clients.push(c);
      return c;
    },
    cli: (args, env = {}, script) => runCli(args, env, { home: home.dir, script }),
    async sql<T>(text: string, params: unknown[] = []) {
      const c = new Client({ connectionString: schema.url });
      await c.connect();
      try {
        return (await c.query(text, params)).rows as T[];
      } finally {
        await c.end();
      }
    },
  };
}

const secretOf = (out: string): string => {
  const m = /^Secret: (\S+)$/m.exec(out);
  assert.ok(m, `no secret in:\n${out}`);
  return m[1]!;
};

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

test("the guide's bootstrap steps 1-6, verbatim through the CLI", async (t) => {
  const e = await setup(t);
  if (!e) return;
  // 1. Generate a secure random token (python -c "import secrets; print(secrets.token_urlsafe(32))").
  const boot = randomBytes(32).toString('base64url');
  // 2-3. Configure the environment and start the server.
  const first = await e.server({ ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: boot, ORCHEO_AUTH_MODE: 'required' });
  // 4. Create the first persistent token.
  const created = await e.cli(
    ['token', 'create', '--id', 'production-token', '--scope', 'workflows:read', '--scope', 'workflows:write', '--scope', 'workflows:execute'],
    { ORCHEO_SERVICE_TOKEN: boot, ORCHEO_API_URL: first.url },
  );
  assert.equal(created.code, 0, created.stderr);
  assert.match(created.stdout, /^Service token created successfully!$/m);
  assert.match(created.stdout, /^ID: production-token$/m);
  assert.ok(created.stdout.includes(`\n${WARNING}\n`), created.stdout);
  assert.match(created.stdout, /^Scopes: workflows:execute, workflows:read, workflows:write$/m);
  assert.match(created.stdout, /^Expires: never$/m);
  const token = secretOf(created.stdout);
  assert.match(token, /^[A-Za-z0-9_-]{43}$/);
  const run = { method: 'POST', path: '/api/workflows/wf-1/runs', headers: bearer(token) };
  const allowed = await e.grpc(first).check(run);
  assert.equal(okHeaders(allowed)['x-orcheo-subject'], 'production-token');
  assert.match(await first.waitForLog(/bootstrap token used/), /bootstrap token used/, 'bootstrap use is logged');
  assert.match(first.logs(), /a bootstrap service token is configured/);
  // 5-6. Switch to the new token, remove the bootstrap token, restart.
  assert.equal(await first.stop(), 0);
  const second = await e.server({ ORCHEO_AUTH_MODE: 'required' });
  const c2 = e.grpc(second);
  assert.equal(okHeaders(await c2.check(run))['x-orcheo-token-id'], 'production-token', 'the persistent token survives the restart');
  const bootNow = await c2.check({ path: '/api/workflows', headers: bearer(boot) });
  assert.equal(deniedStatus(bootNow), 401, 'the removed bootstrap token no longer works');
  // The production token has no admin scopes: the CLI is refused with the server's message and code.
  const list = await e.cli(['token', 'list'], { ORCHEO_SERVICE_TOKEN: token, ORCHEO_API_URL: second.url });
  assert.equal(list.code, 1);
  assert.match(list.stderr, /Missing required scopes: admin:tokens:read \(auth\.missing_scope\)/);
  for (const s of [first, second]) {
    assert.ok(!s.logs().includes(token), 'the secret never reaches the logs');
    assert.ok(!s.logs().includes(boot), 'the bootstrap token never reaches the logs');
  }
  const audit = await e.sql<{ event: string; token_id: string; actor: string | null }>(`SELECT event, token_id, actor FROM auth_audit_events WHERE event IN ('token.created', 'bootstrap.configured') ORDER BY id`);
  assert.deepEqual(audit.map((r) => `${r.event}:${r.token_id}:${r.actor ?? ''}`).sort(), ['bootstrap.configured:bootstrap:', 'token.created:production-token:bootstrap']);
});

test('rotate through the CLI: overlap 0 ends the old secret at once, a short overlap ends it on time', async (t) => {
  const e = await setup(t);
  if (!e) return;
  const boot = randomBytes(32).toString('base64url');
  const s = await e.server({ ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: boot });
  const env = { ORCHEO_SERVICE_TOKEN: boot, ORCHEO_API_URL: s.url };
  const g = e.grpc(s);
  const v1 = secretOf((await e.cli(['token', 'create', '--id', 'my-ci-token', '--scope', 'workflows:read'], env)).stdout);
  const get = (tok: string) => g.check({ path: '/api/workflows', headers: bearer(tok) });
  assert.ok((await get(v1)).ok_response);

  const r0 = await e.cli(['token', 'rotate', 'my-ci-token', '--overlap', '0'], env);
  assert.equal(r0.code, 0, r0.stderr);
  assert.match(r0.stdout, /^Service token rotated successfully!$/m);
  assert.ok(r0.stdout.includes(WARNING));
  assert.match(r0.stdout, /^Previous secret \(now my-ci-token~r1\): no longer valid$/m);
  const v2 = secretOf(r0.stdout);
  assert.equal(deniedBody(await get(v1)).code, 'auth.token_expired', 'overlap 0: refused at once');
  assert.ok((await get(v2)).ok_response);

  const r3 = await e.cli(['token', 'rotate', 'my-ci-token', '--overlap', '3', '--json'], env);
  assert.equal(r3.code, 0, r3.stderr);
  const j = JSON.parse(r3.stdout);
  assert.equal(j.id, 'my-ci-token');
  assert.equal(j.previous.id, 'my-ci-token~r2');
  assert.ok((await get(v2)).ok_response, 'allowed during the overlap');
  assert.ok((await get(j.secret)).ok_response);
  const end = Date.parse(j.previous.expires_at);
  await new Promise((r) => setTimeout(r, Math.max(0, end - Date.now()) + 100));
  assert.equal(deniedBody(await get(v2)).code, 'auth.token_expired', 'refused after the overlap');
  assert.ok((await get(j.secret)).ok_response);

  const shown = await e.cli(['token', 'show', 'my-ci-token'], env);
  assert.equal(shown.code, 0);
  assert.match(shown.stdout, /^Status:\s+Active$/m);
  assert.match(shown.stdout, /^Rotated from:\s+my-ci-token~r2$/m);
  const list = await e.cli(['token', 'list'], env);
  assert.equal(list.code, 0);
  const lines = list.stdout.trim().split('\n');
  assert.match(lines[0]!, /^ID\s+Scopes\s+Workspaces\s+Issued\s+Expires\s+Status$/);
  assert.match(list.stdout, /^my-ci-token\s+workflows:read\s+none\s+\S+ \S+ UTC\s+never\s+Active$/m);
  assert.match(list.stdout, /^my-ci-token~r1\s.*\sRotated$/m);
  // header, rule, three tokens, blank, the note that tokens without workspaces are denied on workspace routes
  assert.equal(lines.length, 2 + 3 + 2);
  assert.match(lines.at(-1)!, /denied on workspace routes/);
});

test('a revocation through one server instance is enforced by another one sharing the store', async (t) => {
  const e = await setup(t);
  if (!e) return;
  const boot = randomBytes(32).toString('base64url');
  const env = { ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: boot, ORCHEO_AUTH_MODE: 'required' };
  const [one, two] = await Promise.all([e.server(env), e.server(env)]);
  const created = await e.cli(['token', 'create', '--id', 'shared', '--json'], { ORCHEO_SERVICE_TOKEN: boot, ORCHEO_API_URL: one.url });
  const secret = JSON.parse(created.stdout).secret as string;
  const g2 = e.grpc(two);
  const onTwo = () => g2.check({ path: '/api/ping', headers: bearer(secret) });
  const t0 = Date.now();
  while (!(await onTwo()).ok_response) {
    assert.ok(Date.now() - t0 < 3000, 'the second instance learns the new token');
    await new Promise((r) => setTimeout(r, 5));
  }
  const res = await adminRequest(one.url, 'DELETE', '/shared', { token: boot, body: { reason: 'compromised' } });
  assert.equal(res.status, 200);
  const start = performance.now();
  let last = await onTwo();
  while (deniedBody(last).code !== 'auth.token_revoked') {
    assert.ok(performance.now() - start < 3000, 'the other instance denies within 3 s');
    await new Promise((r) => setTimeout(r, 2));
    last = await onTwo();
  }
  const ms = performance.now() - start;
  t.diagnostic(`revocation seen by the second server process after ${ms.toFixed(1)} ms (gRPC polling every 2 ms)`);
});

test('an unreachable server: a clear message and exit 1', async (t) => {
  const home = tempHome();
  t.after(() => home.remove());
  const port = await closedPort();
  const r = await runCli(['token', 'list'], { ORCHEO_API_URL: `http://127.0.0.1:${port}`, ORCHEO_SERVICE_TOKEN: 'x'.repeat(40) }, { home: home.dir });
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`Cannot reach the Orcheo API at http://127\\.0\\.0\\.1:${port} \\(connection refused\\)`));
  assert.ok(!r.stderr.includes('x'.repeat(40)));
  const j = await runCli(['token', 'show', 'abc', '--json'], { ORCHEO_API_URL: `http://127.0.0.1:${port}` }, { home: home.dir });
  assert.equal(j.code, 1);
  assert.equal(JSON.parse(j.stdout).code, 'cli.unreachable');
});

test('without --api-url, ORCHEO_API_URL or a profile the CLI calls http://127.0.0.1:8181 (the service\'s default HTTP port)', async (t) => {
  const home = tempHome();
  t.after(() => home.remove());
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"tokens":[]}');
  });
  const bound = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(8181, '127.0.0.1', () => resolve(true));
  });
  if (!bound) return void t.skip('port 8181 is in use on this machine');
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const r = await runCli(['token', 'list', '--json'], {}, { home: home.dir });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { tokens: [] });
  assert.deepEqual(seen, ['GET /api/admin/service-tokens']);
});

test('a redirect is not followed (the token stays with the configured origin); an answer that is not JSON is named', async (t) => {
  const home = tempHome();
  t.after(() => home.remove());
  const listen = async (handler: RequestListener): Promise<number> => {
    const s = createServer(handler);
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => s.close(() => resolve())));
    return (s.address() as { port: number }).port;
  };
  const elsewhere: string[] = [];
  const target = await listen((req, res) => {
    elsewhere.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"tokens":[]}');
  });
  const redirecting = await listen((_req, res) => res.writeHead(302, { location: `http://127.0.0.1:${target}/api/admin/service-tokens\u00e9` }).end());
  const token = 'r'.repeat(40);
  const r = await runCli(['token', 'list'], { ORCHEO_API_URL: `http://127.0.0.1:${redirecting}`, ORCHEO_SERVICE_TOKEN: token }, { home: home.dir });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`answered with a redirect \\(HTTP 302 to http://127\\.0\\.0\\.1:${target}/api/admin/service-tokens\\?\\), which the CLI does not follow`));
  assert.deepEqual(elsewhere, [], 'the redirect target was contacted');
  assert.ok(!r.stderr.includes(token) && !r.stderr.includes('\u00e9'));

  const html = await listen((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>'));
  const n = await runCli(['token', 'list'], { ORCHEO_API_URL: `http://127.0.0.1:${html}`, ORCHEO_SERVICE_TOKEN: token }, { home: home.dir });
  assert.equal(n.code, 1, n.stderr);
  assert.match(n.stderr, /Unexpected answer from http:\/\/127\.0\.0\.1:\d+ \(HTTP 200, not JSON\): is this the orcheo-authz admin API\?/);
});

test('usage errors exit 2 without contacting the server', async (t) => {
  const home = tempHome();
  t.after(() => home.remove());
  // Any attempt to reach this URL would be exit 1 (unreachable), not 2.
  const env = { ORCHEO_API_URL: `http://127.0.0.1:${await closedPort()}` };
  const cases: Array<[string[], RegExp, Record<string, string>?]> = [
    [['token', 'create', '--expires-in', 'abc'], /--expires-in must be a whole number/],
    // The server's minimum, refused before the request.
    [['token', 'create', '--expires-in', '59'], /--expires-in must be at least 60/],
    [['token', 'rotate', 'x', '--expires-in', '1'], /--expires-in must be at least 60/],
    [['token', 'rotate', 'x', '--overlap', '-5'], /unknown option '-5'|--overlap must be a whole number/],
    [['token', 'rotate', 'x', '--overlap', 'soon'], /--overlap must be a whole number/],
    [['token', 'show'], /missing required argument 'id'/],
    [['token', 'show', 'a', 'b'], /too many arguments/],
    [['token', 'bogus'], /unknown command 'bogus'/],
    [['token', 'create', '--colour', 'red'], /unknown option '--colour'/],
    [['token', 'list', '--profile', 'nope'], /Profile "nope" not found/],
    [['token', 'list'], /Invalid API URL from ORCHEO_API_URL/, { ORCHEO_API_URL: 'not a url' }],
    [['token', 'list', '--api-url', 'ftp://x'], /expected http:\/\/ or https:\/\//],
    [['token', 'show', 'audit'], /reserved/],
    [['token'], /Usage: .*token/],
  ];
  for (const [args, message, extra] of cases) {
    const r = await runCli(args, { ...env, ...extra }, { home: home.dir });
    assert.equal(r.code, 2, `${args.join(' ')} → ${r.code}\n${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
  }
  const help = await runCli(['token', 'create', '--help'], env, { home: home.dir });
  assert.equal(help.code, 0);
  for (const flag of ['--id', '--scope', '--workspace', '--expires-in', '--json']) assert.ok(help.stdout.includes(flag), flag);
});

test('--json output parses on every command; refusals carry the code and exit 1', async (t) => {
  const e = await setup(t);
  if (!e) return;
  const boot = randomBytes(32).toString('base64url');
  const s = await e.server({ ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: boot });
  const env = { ORCHEO_SERVICE_TOKEN: boot, ORCHEO_API_URL: s.url };
  const json = async (args: string[], code = 0) => {
    const r = await e.cli([...args, '--json'], env);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  const c = await json(['token', 'create', '--id', 'j', '--scope', 'vault:read', '--workspace', 'ws-1', '--workspace', 'ws-2', '--expires-in', '2592000']);
  assert.equal(c.id, 'j');
  assert.deepEqual(c.workspaces, ['ws-1', 'ws-2']);
  assert.equal(Date.parse(c.expires_at) - Date.parse(c.issued_at), 2592000 * 1000);
  assert.match(c.secret, /^[A-Za-z0-9_-]{43}$/);
  assert.deepEqual((await json(['token', 'list'])).tokens.map((x: { id: string }) => x.id), ['j']);
  assert.equal((await json(['token', 'list', '--status', 'Revoked'])).tokens.length, 0);
  assert.equal((await json(['token', 'show', 'j'])).status, 'Active');
  const rot = await json(['token', 'rotate', 'j', '--scope', 'vault:write', '--expires-in', '600']);
  assert.deepEqual(rot.scopes, ['vault:write']);
  assert.equal((await json(['token', 'revoke', 'j', '--reason', 'Token compromised'])).status, 'Revoked');
  const audit = await json(['token', 'audit', '--id', 'j']);
  assert.deepEqual(audit.events.map((x: { event: string; token_id: string }) => `${x.event}:${x.token_id}`), ['token.revoked:j~r1', 'token.revoked:j', 'token.rotated:j', 'token.created:j']);
  assert.equal(audit.events[1].reason, 'Token compromised');
  const dup = await json(['token', 'create', '--id', 'j'], 1);
  assert.deepEqual([dup.code, dup.status], ['token.duplicate', 409]);
  const bad = await json(['token', 'create', '--scope', 'workflows:everything'], 1);
  assert.equal(bad.code, 'token.invalid_scope');
  const missing = await json(['token', 'show', 'nope'], 1);
  assert.deepEqual([missing.code, missing.status], ['token.not_found', 404]);
  // Human output of refusals: message and code on stderr.
  const human = await e.cli(['token', 'rotate', 'nope'], env);
  assert.equal(human.code, 1);
  assert.match(human.stderr, /^Error: Service token "nope" not found \(token\.not_found\)$/m);
  const anon = await e.cli(['token', 'list'], { ORCHEO_API_URL: s.url });
  assert.equal(anon.code, 1);
  assert.match(anon.stderr, /Missing bearer token \(auth\.missing_token\)/);
  assert.match(anon.stderr, /set ORCHEO_SERVICE_TOKEN/);
  const revokedOut = await e.cli(['token', 'audit'], env);
  assert.match(revokedOut.stdout, /^Time\s+Event\s+Token\s+Actor\s+Count/m);
});

test('profiles in ~/.config/orcheo/cli.toml and the precedence flag > env > profile > default; the `orcheo` bin name', async (t) => {
  const e = await setup(t);
  if (!e) return;
  const boot = randomBytes(32).toString('base64url');
  const s = await e.server({ ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: boot });
  const dead = `http://127.0.0.1:${await closedPort()}`;
  const dir = join(e.home, '.config', 'orcheo');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'cli.toml'), `[default]\napi_url = "${s.url}"\nservice_token = "${boot}"\n\n[staging]\napi_url = "${dead}"\nservice_token = "${boot}"\n`);

  const viaProfile = await e.cli(['token', 'create', '--id', 'from-profile']);
  assert.equal(viaProfile.code, 0, viaProfile.stderr);
  assert.equal((await e.cli(['token', 'list', '--profile', 'staging'])).code, 1, 'staging points at a dead URL');
  assert.equal((await e.cli(['token', 'list'], { ORCHEO_PROFILE: 'staging' })).code, 1);
  assert.equal((await e.cli(['token', 'list', '--profile', 'staging', '--api-url', s.url])).code, 0, 'flag beats profile');
  const envBeatsProfile = await e.cli(['token', 'list'], { ORCHEO_API_URL: dead });
  assert.equal(envBeatsProfile.code, 1);
  assert.match(envBeatsProfile.stderr, /Cannot reach/);
  assert.equal((await e.cli(['token', 'list', '--api-url', s.url], { ORCHEO_API_URL: dead })).code, 0, 'flag beats env');
  const badEnvToken = await e.cli(['token', 'list'], { ORCHEO_SERVICE_TOKEN: 'wrong-token-wrong-token-wrong' });
  assert.equal(badEnvToken.code, 1, 'env token beats the profile token');
  assert.match(badEnvToken.stderr, /auth\.invalid_token/);
  assert.equal((await e.cli(['token', 'list', '--service-token', boot], { ORCHEO_SERVICE_TOKEN: 'wrong-token-wrong-token-wrong' })).code, 0, 'flag beats env');

  // The second bin name, as installed by npm (a symlink called `orcheo`).
  const bin = join(e.home, 'bin');
  mkdirSync(bin);
  symlinkSync(MAIN_JS, join(bin, 'orcheo'));
  const viaOrcheo = await e.cli(['token', 'show', 'from-profile'], {}, join(bin, 'orcheo'));
  assert.equal(viaOrcheo.code, 0, viaOrcheo.stderr);
  assert.match(viaOrcheo.stdout, /^ID:\s+from-profile$/m);
  assert.match((await e.cli(['token', '--help'], {}, join(bin, 'orcheo'))).stdout, /Usage: orcheo token/);

  // A broken profile file is a usage error that never echoes its content (it holds tokens).
  writeFileSync(join(dir, 'cli.toml'), `[default]\nservice_token = "${boot}\n`);
  const broken = await e.cli(['token', 'list']);
  assert.equal(broken.code, 2);
  assert.match(broken.stderr, /Invalid TOML in .*cli\.toml at line 2/);
  assert.ok(!broken.stderr.includes(boot));
});

test('audit rows for create/rotate/revoke and aggregated failure counts survive a clean stop', async (t) => {
  const e = await setup(t);
  if (!e) return;
  const boot = randomBytes(32).toString('base64url');
  const s = await e.server({ ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: boot, ORCHEO_AUTH_MODE: 'required' });
  const env = { ORCHEO_SERVICE_TOKEN: boot, ORCHEO_API_URL: s.url };
  assert.equal((await e.cli(['token', 'create', '--id', 'audited'], env)).code, 0);
  assert.equal((await e.cli(['token', 'rotate', 'audited', '--overlap', '60'], env)).code, 0);
  assert.equal((await e.cli(['token', 'revoke', 'audited', '--reason', 'Token compromised'], env)).code, 0);
  const g = e.grpc(s);
  const failures = 75;
  await Promise.all(Array.from({ length: failures }, (_, i) => g.check({ path: '/api/workflows', headers: bearer(`not-a-token-${i}-${randomBytes(8).toString('hex')}`) })));
  assert.equal(await s.stop(), 0, 'clean stop');
  const rows = await e.sql<{ event: string; token_id: string | null; reason: string | null; n: number }>(
    `SELECT event, token_id, reason, sum(count)::int AS n FROM auth_audit_events GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
  );
  const got = Object.fromEntries(rows.map((r) => [`${r.event}|${r.token_id ?? ''}|${r.reason ?? ''}`, r.n]));
  assert.equal(got['auth.failure||auth.invalid_token'], failures, JSON.stringify(got));
  assert.equal(got['token.created|audited|'], 1);
  assert.equal(got['token.rotated|audited|'], 1);
  assert.equal(got['token.revoked|audited|Token compromised'], 1);
  assert.equal(got['token.revoked|audited~r1|Token compromised'], 1);
  assert.equal(got['bootstrap.used|bootstrap|'], 3);
  const total = await e.sql<{ n: number }>(`SELECT count(*)::int AS n FROM auth_audit_events WHERE event = 'auth.failure'`);
  assert.ok(total[0]!.n <= 2, `${failures} failures in ${total[0]!.n} rows`);
});
