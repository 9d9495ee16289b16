import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import pino from 'pino';
import { BUILTIN_POLICY } from '../src/authz/builtin';
import { normalizePath } from '../src/authz/normalize';
import { compilePattern } from '../src/authz/pattern';
import { applyContextExtensions, evaluatePolicy } from '../src/authz/policy';
import { parsePolicy, PolicyError, PolicySource } from '../src/authz/policy-file';
import { startTestApp } from './helpers/app';
import { deniedBody, okHeaders } from './helpers/grpc-client';
import { pollUntil } from './helpers/wait';

describe('path patterns', () => {
  test('*, ** and {param}', () => {
    assert.deepEqual(compilePattern('/a/{id}/b').match('/a/42/b'), { id: '42' });
    assert.equal(compilePattern('/a/{id}/b').match('/a/42/c'), undefined);
    assert.equal(compilePattern('/a/*').match('/a/x/y'), undefined);
    assert.ok(compilePattern('/a/*').match('/a/x'));
    for (const p of ['/a', '/a/', '/a/b', '/a/b/c']) assert.ok(compilePattern('/a/**').match(p), p);
    assert.equal(compilePattern('/a/**').match('/ab'), undefined);
    assert.ok(compilePattern('/a/**/z').match('/a/z'));
    assert.ok(compilePattern('/a/**/z').match('/a/b/c/z'));
    assert.equal(compilePattern('/a.b').match('/aXb'), undefined, 'dots are literal');
  });

  test('bad patterns are refused with a reason', () => {
    assert.throws(() => compilePattern('api'), /must start with/);
    assert.throws(() => compilePattern('/a/x*'), /whole segment/);
    assert.throws(() => compilePattern('/a/{id}/{id}'), /twice/);
  });

  test('normalised paths cannot dodge a rule', () => {
    assert.equal(normalizePath('/api/public/../admin/service-tokens?x=1'), '/api/admin/service-tokens');
    assert.equal(normalizePath('//api///workflows/./x'), '/api/workflows/x');
    assert.equal(normalizePath('/../../etc'), '/etc');
    assert.equal(normalizePath(''), '/');
    assert.equal(normalizePath('/api/workflows/%2e%2e/credentials/c1'), '/api/credentials/c1', 'encoded dot segments');
    assert.equal(normalizePath('/api/workflows%2F..%2Fcredentials'), '/api/credentials', 'encoded slashes');
    assert.equal(normalizePath('/api/%77orkflows'), '/api/workflows', 'encoded letters');
    assert.equal(normalizePath('/api\\..\\admin'), '/admin', 'backslashes');
    assert.equal(normalizePath('/api/%zz/%E0%A4%A'), '/api/%zz/\u00e0\u00a4%A', 'malformed escapes never throw');
  });

  test('encoded traversal cannot downgrade a route to a weaker rule', () => {
    const r = evaluatePolicy(BUILTIN_POLICY, 'GET', normalizePath('/api/workflows/%2e%2e/credentials/c1'));
    assert.deepEqual([...r.scopes], ['vault:read']);
  });
});

describe('built-in Orcheo policy (the guide scope table)', () => {
  const cases: Array<[string, string, string[], string?]> = [
    ['GET', '/api/workflows', ['workflows:read']],
    ['HEAD', '/api/workflows/wf-1', ['workflows:read']],
    ['POST', '/api/workflows', ['workflows:write']],
    ['DELETE', '/api/workflows/wf-1', ['workflows:write']],
    ['POST', '/api/workflows/wf-1/runs', ['workflows:execute']],
    ['GET', '/api/workflows/wf-1/runs', ['workflows:read']],
    ['GET', '/api/credentials/c1', ['vault:read']],
    ['PUT', '/api/credentials/c1', ['vault:write']],
    ['GET', '/api/admin/service-tokens', ['admin:tokens:read']],
    ['POST', '/api/admin/service-tokens/t/rotate', ['admin:tokens:write']],
    ['GET', '/api/workspaces/ws-9/things', [], 'ws-9'],
    ['GET', '/api/other', []],
  ];
  for (const [method, path, scopes, ws] of cases) {
    test(`${method} ${path}`, () => {
      const r = evaluatePolicy(BUILTIN_POLICY, method, normalizePath(path));
      assert.deepEqual([...r.scopes], scopes);
      assert.equal(r.workspace, ws);
    });
  }

  test('context_extensions take precedence', () => {
    const r = applyContextExtensions(evaluatePolicy(BUILTIN_POLICY, 'GET', '/api/workflows'), { required_scopes: 'vault:read vault:write', required_workspace: 'w', auth: 'OPTIONAL' });
    assert.deepEqual([...r.scopes], ['vault:read', 'vault:write']);
    assert.equal(r.workspace, 'w');
    assert.equal(r.auth, 'optional');
    assert.match(r.matched, /context_extensions/);
  });
});

describe('policy files', () => {
  test('every problem is reported at once, with its location', () => {
    const bad = `
rules:
  - match: { path: api/x, methods: [GET, FETCH, "GE T"] }
    scopes: [workflows:reed]
  - match: { path: "/w/{id}/**" }
    workspace: "{wid}"
    auth: maybe
    extra: 1
default: { scopes: [nope] }
`;
    try {
      parsePolicy(bad, 'bad.yaml');
      assert.fail('expected PolicyError');
    } catch (err) {
      assert.ok(err instanceof PolicyError);
      const text = err.problems.join('\n');
      for (const needle of ['rules[0].match.methods: "GE T" is not an HTTP method token', 'rules[0].match.path', 'rules[1].workspace: {wid} is not captured', 'rules[1].auth', 'rules[1].extra: unknown field', 'default.scopes: unknown scope "nope"']) {
        assert.ok(text.includes(needle), `missing problem: ${needle}\n${text}`);
      }
      assert.ok(!text.includes('FETCH'), `FETCH is a valid extension method: ${text}`);
    }
    const fetch = parsePolicy('rules:\n  - match: { methods: [fetch, PROPFIND], path: /a/** }\n    scopes: [vault:read]\n', 'ok.yaml');
    assert.deepEqual([...evaluatePolicy(fetch, 'FETCH', '/a/b').scopes], ['vault:read'], 'methods are case-insensitive tokens');
    assert.equal(evaluatePolicy(fetch, 'GET', '/a/b').matched, 'default');
    assert.throws(() => parsePolicy('rules: [', 'x'), /not valid YAML or JSON/);
    assert.throws(() => parsePolicy('[]', 'x'), /expected a mapping/);
  });

  test('the reload log says "1 rule", not "1 rules"', () => {
    const dir = mkdtempSync(join(tmpdir(), 'authz-policy-'));
    const file = join(dir, 'p.yaml');
    writeFileSync(file, 'rules:\n  - match: { path: /a }\n');
    const lines: string[] = [];
    const source = new PolicySource(BUILTIN_POLICY, file, pino({}, { write: (s: string) => void lines.push(s) }));
    try {
      assert.equal(source.reload(), true);
      assert.match(lines.join(''), /"rules":1,.*"msg":"policy reloaded: 1 rule"/);
      writeFileSync(file, 'rules:\n  - match: { path: /a }\n  - match: { path: /b }\n');
      source.reload();
      assert.match(lines.join(''), /"msg":"policy reloaded: 2 rules"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('remembered answers: each path keeps its own workspace, per method and per policy, past the memo bound', () => {
    const yaml = (scope: string): string => `rules:\n  - match: { methods: [GET], path: "/w/{ws}/items/**" }\n    scopes: [${scope}]\n    workspace: "{ws}"\n`;
    const p1 = parsePolicy(yaml('workflows:read'), 'p1.yaml');
    const p2 = parsePolicy(yaml('workflows:write'), 'p2.yaml');
    // 10 000 distinct paths (more than the memo keeps) visited twice, interleaved with the same
    // path under another method and another policy: the oracle is the path string itself.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 10_000; i++) {
        const ws = `ws-${(i * 7919) % 10_000}`;
        const path = `/w/${ws}/items/${i % 3}`;
        const r = evaluatePolicy(p1, 'GET', path);
        assert.equal(r.workspace, ws, path);
        assert.deepEqual([...r.scopes], ['workflows:read']);
        assert.equal(evaluatePolicy(p1, 'POST', path).matched, 'default', `POST ${path}`);
        assert.deepEqual([...evaluatePolicy(p2, 'GET', path).scopes], ['workflows:write'], `p2 ${path}`);
      }
    }
    assert.ok(Object.isFrozen(evaluatePolicy(p1, 'GET', '/w/a/items/x')), 'a shared answer cannot be changed by one request');
  });

  test('JSON works too', () => {
    const p = parsePolicy(JSON.stringify({ rules: [{ match: { path: '/a/**' }, scopes: ['vault:read'] }] }), 'p.json');
    assert.deepEqual([...evaluatePolicy(p, 'GET', '/a/b').scopes], ['vault:read']);
  });

  test('a file is served, reloaded on a ConfigMap-style symlink swap, and a broken update keeps the old policy', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'authz-policy-'));
    const v1 = join(dir, 'v1.yaml');
    const v2 = join(dir, 'v2.yaml');
    const link = join(dir, 'policy.yaml');
    writeFileSync(v1, 'rules:\n  - match: { path: /api/** }\n    scopes: [vault:read]\n');
    writeFileSync(v2, 'rules:\n  - match: { path: /api/** }\n    auth: public\n');
    symlinkSync(v1, link);
    const t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_POLICY_FILE: link, ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: 'b'.repeat(32), ORCHEO_AUTH_BOOTSTRAP_TOKEN_SCOPES: 'workflows:read' }, 'auto');
    try {
      const r1 = await t.client.check({ path: '/api/x', headers: { authorization: `Bearer ${'b'.repeat(32)}` } });
      assert.equal(deniedBody(r1).message, 'Missing required scopes: vault:read');
      symlinkSync(v2, join(dir, 'tmp-link'));
      renameSync(join(dir, 'tmp-link'), link);
      let r2 = r1;
      for (let i = 0; i < 40 && !r2.ok_response; i++) {
        await new Promise((res) => setTimeout(res, 100));
        r2 = await t.client.check({ path: '/api/x' });
      }
      assert.equal(okHeaders(r2)['x-orcheo-authenticated'], 'false', 'the swapped policy made /api/** public');
      // A broken update seen by the running app's own watcher: refused (counted and logged), the
      // policy in force stays.
      const failures = async () => Number(/^orcheo_authz_policy_reload_failures_total (\d+)/m.exec(await (await fetch(`http://127.0.0.1:${t.app.httpPort}/metrics`)).text())?.[1]);
      assert.equal(await failures(), 0);
      writeFileSync(v2, 'rules: [');
      await pollUntil('the watcher refused the broken file', async () => (await failures()) >= 1, { everyMs: 50 });
      assert.ok(t.logs.some((l) => l.includes('policy reload failed; keeping the previous policy')));
      assert.equal(okHeaders(await t.client.check({ path: '/api/x' }))['x-orcheo-authenticated'], 'false', 'the previous (public) policy stays in force');
    } finally {
      await t.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
