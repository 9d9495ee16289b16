/**
 * Issue 11 point 2: path matching is by segments and linear in the path's length. The matcher is
 * checked against an independent reference written here (a memoised recursive matcher over
 * segment arrays), and a pathological policy is served by the real gRPC server while an ordinary
 * Check runs alongside.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { InvalidPathError, normalizePath } from '../src/authz/normalize';
import { compilePattern } from '../src/authz/pattern';
import { startTestApp } from './helpers/app';
import { deniedBody, okHeaders } from './helpers/grpc-client';

/**
 * Reference: `**` any number of segments, `*` and `{x}` one non-empty segment, else literal; one
 * trailing slash tolerated on either side. Captures come from the first solution in the order
 * "earlier `**` takes fewer segments", found by memoised search.
 */
function reference(pattern: string, path: string): Record<string, string> | undefined {
  const strip = (s: string) => (s.length > 1 && s.endsWith('/') ? s.slice(0, -1) : s);
  const pat = strip(pattern) === '/' ? [] : strip(pattern).split('/').slice(1);
  if (!path.startsWith('/')) return undefined;
  const segs = strip(path) === '/' ? [] : strip(path).split('/').slice(1);
  const memo = new Map<number, boolean>();
  const one = (p: string, s: string) => (p === '*' || /^\{\w+\}$/.test(p) ? s !== '' : p === s);
  const can = (pi: number, si: number): boolean => {
    const key = pi * (segs.length + 1) + si;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let r: boolean;
    if (pi === pat.length) r = si === segs.length;
    else if (pat[pi] === '**') r = can(pi + 1, si) || (si < segs.length && can(pi, si + 1));
    else r = si < segs.length && one(pat[pi]!, segs[si]!) && can(pi + 1, si + 1);
    memo.set(key, r);
    return r;
  };
  if (!can(0, 0)) return undefined;
  const out: Record<string, string> = {};
  let pi = 0;
  let si = 0;
  while (pi < pat.length) {
    const p = pat[pi]!;
    if (p === '**') {
      if (can(pi + 1, si)) pi++;
      else si++;
      continue;
    }
    const m = /^\{(\w+)\}$/.exec(p);
    if (m) out[m[1]!] = segs[si]!;
    pi++;
    si++;
  }
  return out;
}

const ALPHABET = ['a', 'b', 'runs', 'workflows'];
const patternArb = fc
  .array(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...ALPHABET) }, { weight: 3, arbitrary: fc.constant('**') }, { weight: 1, arbitrary: fc.constant('*') }, { weight: 1, arbitrary: fc.constant('{p}') }), { maxLength: 7 })
  .map((segs) => {
    let n = 0;
    // Parameters must be distinct: {p0}, {p1}, …
    return `/${segs.map((s) => (s === '{p}' ? `{p${n++}}` : s)).join('/')}`;
  });
const pathArb = fc.oneof(
  fc.tuple(fc.array(fc.constantFrom(...ALPHABET), { maxLength: 12 }), fc.boolean()).map(([segs, slash]) => `/${segs.join('/')}${slash && segs.length > 0 ? '/' : ''}`),
  // Adversarial: long runs of the pattern's own literals, the shape that made the regex backtrack.
  fc.tuple(fc.constantFrom('workflows', 'a', 'runs'), fc.integer({ min: 50, max: 400 }), fc.constantFrom('', '/runs', '/z', '/b/runs')).map(([lit, n, tail]) => `/a${`/${lit}`.repeat(n)}${tail}`),
);

describe('segment matcher agrees with an independent reference', () => {
  test('random patterns and paths (including long repeated-literal paths)', () => {
    fc.assert(
      fc.property(patternArb, pathArb, (pattern, path) => {
        assert.deepEqual(compilePattern(pattern).match(path), reference(pattern, path), `${pattern} vs ${path.length > 80 ? `${path.slice(0, 80)}… (${path.length})` : path}`);
      }),
      { numRuns: 3000 },
    );
  });

  test('the reference is not vacuous: known answers', () => {
    assert.deepEqual(reference('/a/**', '/a'), {});
    assert.deepEqual(reference('/a/**', '/a/b/c/'), {});
    assert.equal(reference('/a/**', '/ab'), undefined);
    assert.deepEqual(reference('/a/**/{id}/runs', '/a/x/y/runs'), { id: 'y' });
    assert.equal(reference('/a/*', '/a/x/y'), undefined);
    assert.deepEqual(compilePattern('/a/**/{id}/runs/**').match('/a/1/runs/2/runs'), { id: '1' }, 'each ** takes as few segments as it can');
  });

  test('normalised paths drop ;parameters and refuse what cannot be read unambiguously', () => {
    assert.equal(normalizePath('/api/credentials;x=1'), '/api/credentials');
    assert.equal(normalizePath('/api;a/workflows;b=2/wf-1/'), '/api/workflows/wf-1/');
    for (const p of ['/a/%252e%252e/b', '/a%00', '/a/\u0001', '/a/%7F', '/x/..;/y', '/x/.;a/y']) assert.throws(() => normalizePath(p), InvalidPathError, p);
  });
});

describe('a pathological policy through the real server', () => {
  test('nested ** and a 60 KiB path: the Check answers correctly while an ordinary Check runs alongside', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'authz-match-'));
    const file = join(dir, 'policy.yaml');
    writeFileSync(
      file,
      ['rules:', '  - match: { path: "/api/**/workflows/**/runs/**/z" }', '    scopes: [workflows:execute]', '  - match: { path: /healthz }', '    auth: public', '  - match: { path: /api/** }', '    scopes: [vault:read]', ''].join('\n'),
    );
    const token = 'm'.repeat(40);
    const app = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_POLICY_FILE: file, ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: token, ORCHEO_AUTH_BOOTSTRAP_TOKEN_SCOPES: 'vault:read' }, 'auto');
    try {
      const auth = { authorization: `Bearer ${token}` };
      const longMiss = `/api${'/workflows/runs'.repeat(4 * 1024)}`; // 60 KiB, no final /z
      assert.ok(longMiss.length >= 60 * 1024);
      const started = process.hrtime.bigint();
      const [miss, hit, ordinary] = await Promise.all([
        app.client.check({ path: longMiss, headers: auth }),
        app.client.check({ path: `${longMiss}/z`, headers: auth }),
        app.client.check({ path: '/healthz' }),
      ]);
      t.diagnostic(`three concurrent Checks incl. two 60 KiB paths: ${Number(process.hrtime.bigint() - started) / 1e6} ms`);
      assert.ok(miss.ok_response, 'the long path falls through to /api/** (vault:read), which the token holds');
      assert.equal(deniedBody(hit).message, 'Missing required scopes: workflows:execute', 'the nested-** rule matches the long path ending in /z');
      assert.equal(okHeaders(ordinary)['x-orcheo-authenticated'], 'false', 'the ordinary public Check answered');
      const one = process.hrtime.bigint();
      compilePattern('/api/**/workflows/**/runs/**/z').match(longMiss);
      t.diagnostic(`one match of the 60 KiB path in-process: ${Number(process.hrtime.bigint() - one) / 1e6} ms`);
    } finally {
      await app.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
