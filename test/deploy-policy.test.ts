/**
 * Deployment files, part 5: the example policy (deploy/policy/policy.yaml) has the contract's shape,
 * expresses the guide's scope table, is accepted by the service's own parser, and the copies embedded
 * in the Kubernetes ConfigMaps are identical to it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BUILTIN_POLICY } from '../src/authz/builtin';
import { evaluatePolicy } from '../src/authz/policy';
import { parsePolicy } from '../src/authz/policy-file';
import { loadK8sObjects, loadYaml, parseYamlText, readRepoFile } from './helpers/envoy-schema';

const POLICY_FILE = 'deploy/policy/policy.yaml';
const SCOPES = ['workflows:read', 'workflows:write', 'workflows:execute', 'vault:read', 'vault:write', 'admin:tokens:read', 'admin:tokens:write'];
/** The contract: any RFC 9110 method token. */
const METHOD_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const AUTH = ['public', 'optional', 'required'];
const PARAM = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

const isObj = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Independent check of the contract's policy format; returns every problem. */
function policyShapeProblems(doc: unknown): string[] {
  const out: string[] = [];
  if (!isObj(doc)) return ['policy: expected a mapping'];
  for (const k of Object.keys(doc)) if (!['rules', 'default'].includes(k)) out.push(`unknown top-level key ${k}`);
  if (!Array.isArray(doc['rules']) || doc['rules'].length === 0) out.push('rules: a non-empty list is required');
  const scopeList = (v: unknown, at: string): void => {
    if (v === undefined) return;
    if (!Array.isArray(v)) return void out.push(`${at}: expected a list`);
    for (const s of v) if (!SCOPES.includes(s)) out.push(`${at}: unknown scope ${JSON.stringify(s)}`);
  };
  (Array.isArray(doc['rules']) ? doc['rules'] : []).forEach((r: unknown, i: number) => {
    const at = `rules[${i}]`;
    if (!isObj(r)) return void out.push(`${at}: expected a mapping`);
    for (const k of Object.keys(r)) if (!['match', 'scopes', 'workspace', 'auth'].includes(k)) out.push(`${at}: unknown key ${k}`);
    const m = r['match'];
    if (!isObj(m)) return void out.push(`${at}.match: required mapping`);
    for (const k of Object.keys(m)) if (!['methods', 'path'].includes(k)) out.push(`${at}.match: unknown key ${k}`);
    if (m['methods'] !== undefined) {
      if (!Array.isArray(m['methods']) || m['methods'].length === 0) out.push(`${at}.match.methods: expected a non-empty list`);
      else for (const x of m['methods']) if (typeof x !== 'string' || !METHOD_TOKEN.test(x)) out.push(`${at}.match.methods: ${JSON.stringify(x)} is not an HTTP method`);
    }
    const path = m['path'];
    const params: string[] = [];
    if (typeof path !== 'string' || !path.startsWith('/')) out.push(`${at}.match.path: must be a string starting with /`);
    else {
      for (const seg of path.split('/').slice(1)) {
        const pm = PARAM.exec(seg);
        if (pm) params.push(pm[1] as string);
        else if (seg !== '*' && seg !== '**' && /[{}*?]/.test(seg)) out.push(`${at}.match.path: bad segment ${JSON.stringify(seg)}`);
      }
    }
    scopeList(r['scopes'], `${at}.scopes`);
    if (r['auth'] !== undefined && !AUTH.includes(r['auth'])) out.push(`${at}.auth: must be one of ${AUTH.join(', ')}`);
    if (r['workspace'] !== undefined) {
      const w = r['workspace'];
      if (typeof w !== 'string' || w === '') out.push(`${at}.workspace: expected a string`);
      else {
        const wm = PARAM.exec(w);
        if (wm && !params.includes(wm[1] as string)) out.push(`${at}.workspace: {${wm[1]}} does not appear in the path`);
        if (!wm && !/^[A-Za-z0-9*][A-Za-z0-9._:-]*$/.test(w)) out.push(`${at}.workspace: not a workspace id`);
      }
    }
  });
  if (doc['default'] !== undefined) {
    if (!isObj(doc['default'])) out.push('default: expected a mapping');
    else {
      for (const k of Object.keys(doc['default'])) if (!['scopes', 'auth', 'workspace'].includes(k)) out.push(`default: unknown key ${k}`);
      scopeList(doc['default']['scopes'], 'default.scopes');
      if (doc['default']['auth'] !== undefined && !AUTH.includes(doc['default']['auth'])) out.push('default.auth: invalid');
    }
  }
  return out;
}

/** Minimal evaluator of the contract's matching rules (`*`, `**`, `{name}`), first match wins. */
function requirementOf(doc: any, method: string, path: string): { scopes: string[]; workspace?: string; auth?: string; rule: number } {
  const rules: any[] = doc.rules;
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i];
    if (r.match.methods && !r.match.methods.includes(method)) continue;
    const captured = matchPath(r.match.path, path);
    if (!captured) continue;
    let workspace: string | undefined = r.workspace;
    const wm = typeof workspace === 'string' ? PARAM.exec(workspace) : null;
    if (wm) workspace = captured[wm[1] as string];
    return { scopes: r.scopes ?? [], workspace, auth: r.auth, rule: i };
  }
  return { scopes: doc.default?.scopes ?? [], auth: doc.default?.auth, rule: -1 };
}

function matchPath(pattern: string, path: string): Record<string, string> | undefined {
  const pat = pattern.split('/').slice(1);
  const segs = path.replace(/\/$/, '').split('/').slice(1);
  const go = (pi: number, si: number, acc: Record<string, string>): Record<string, string> | undefined => {
    if (pi === pat.length) return si === segs.length ? acc : undefined;
    const p = pat[pi] as string;
    if (p === '**') {
      for (let k = si; k <= segs.length; k++) {
        const r = go(pi + 1, k, acc);
        if (r) return r;
      }
      return undefined;
    }
    if (si >= segs.length) return undefined;
    const s = segs[si] as string;
    const pm = PARAM.exec(p);
    if (pm) return s ? go(pi + 1, si + 1, { ...acc, [pm[1] as string]: s }) : undefined;
    if (p === '*') return s ? go(pi + 1, si + 1, acc) : undefined;
    return p === s ? go(pi + 1, si + 1, acc) : undefined;
  };
  return go(0, 0, {});
}

/** The guide's scope table, as requests. */
const EXPECTED: [string, string, { scopes: string[]; workspace?: string; auth?: string }][] = [
  ['GET', '/healthz', { scopes: [], auth: 'public' }],
  ['GET', '/api/workflows', { scopes: ['workflows:read'] }],
  ['HEAD', '/api/workflows/wf-1', { scopes: ['workflows:read'] }],
  ['GET', '/api/workflows/wf-1/runs', { scopes: ['workflows:read'] }],
  ['POST', '/api/workflows', { scopes: ['workflows:write'] }],
  ['PUT', '/api/workflows/wf-1', { scopes: ['workflows:write'] }],
  ['PATCH', '/api/workflows/wf-1', { scopes: ['workflows:write'] }],
  ['DELETE', '/api/workflows/wf-1', { scopes: ['workflows:write'] }],
  ['POST', '/api/workflows/wf-1/runs', { scopes: ['workflows:execute'] }],
  ['GET', '/api/credentials', { scopes: ['vault:read'] }],
  ['GET', '/api/credentials/c-1', { scopes: ['vault:read'] }],
  ['POST', '/api/credentials', { scopes: ['vault:write'] }],
  ['DELETE', '/api/credentials/c-1', { scopes: ['vault:write'] }],
  ['GET', '/api/admin/service-tokens', { scopes: ['admin:tokens:read'] }],
  ['GET', '/api/admin/service-tokens/t-1', { scopes: ['admin:tokens:read'] }],
  ['POST', '/api/admin/service-tokens', { scopes: ['admin:tokens:write'] }],
  ['POST', '/api/admin/service-tokens/t-1/rotate', { scopes: ['admin:tokens:write'] }],
  ['DELETE', '/api/admin/service-tokens/t-1', { scopes: ['admin:tokens:write'] }],
  ['GET', '/api/workspaces/ws-1/things', { scopes: [], workspace: 'ws-1' }],
  ['POST', '/api/workspaces/ws-2', { scopes: [], workspace: 'ws-2' }],
  ['GET', '/api/something-else', { scopes: [] }],
];

describe('example policy file', () => {
  const doc = loadYaml(POLICY_FILE);

  it('has the contract shape', () => {
    assert.deepEqual(policyShapeProblems(doc), []);
    assert.ok(doc.rules.length >= 9);
  });

  it('the shape check fails on bad rules', () => {
    const bad = {
      rules: [
        { match: { methods: ['FETCH', 'GE T'], path: 'api/x' }, scopes: ['workflows:run'], auth: 'anonymous' },
        { match: { path: '/api/ws/{ws_id}/**' }, workspace: '{workspace_id}' },
        { match: { path: '/api/x', method: ['GET'] }, scope: ['vault:read'] },
      ],
      defaults: {},
    };
    const problems = policyShapeProblems(bad).join('\n');
    for (const re of [
      /"GE T" is not an HTTP method/,
      /must be a string starting with \//,
      /unknown scope "workflows:run"/,
      /auth: must be one of/,
      /\{workspace_id\} does not appear in the path/,
      /match: unknown key method/,
      /unknown key scope/,
      /unknown top-level key defaults/,
    ]) {
      assert.match(problems, re);
    }
  });

  for (const [method, path, want] of EXPECTED) {
    it(`${method} ${path} -> ${JSON.stringify(want)}`, () => {
      const got = requirementOf(doc, method, path);
      assert.deepEqual(got.scopes, want.scopes);
      assert.equal(got.workspace, want.workspace);
      assert.equal(got.auth, want.auth);
    });
  }

  it("is accepted by the service's policy parser and agrees with the built-in policy", () => {
    const policy = parsePolicy(readRepoFile(POLICY_FILE), POLICY_FILE);
    assert.equal(policy.rules.length, doc.rules.length);
    for (const [method, path] of EXPECTED) {
      const mine = evaluatePolicy(policy, method, path);
      const builtin = evaluatePolicy(BUILTIN_POLICY, method, path);
      if (path === '/healthz') {
        assert.equal(mine.auth, 'public');
        continue;
      }
      assert.deepEqual([...mine.scopes], [...builtin.scopes], `${method} ${path}: scopes`);
      assert.equal(mine.workspace, builtin.workspace, `${method} ${path}: workspace`);
      assert.equal(mine.auth, builtin.auth, `${method} ${path}: auth`);
    }
  });

  it('the Kubernetes ConfigMaps embed exactly this policy', () => {
    let copies = 0;
    for (const obj of loadK8sObjects('deploy/k8s')) {
      if (obj.kind !== 'ConfigMap' || !obj['data']?.['policy.yaml']) continue;
      copies++;
      const p = parseYamlText(obj['data']['policy.yaml'], `${obj.__file}#policy.yaml`);
      assert.deepEqual(p.problems, []);
      assert.deepEqual(p.docs[0], doc, `${obj.__file} drifted from ${POLICY_FILE}`);
    }
    assert.equal(copies, 2, 'sidecar and shared tier');
  });
});
