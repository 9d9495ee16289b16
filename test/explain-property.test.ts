/**
 * Property: for random requests and tokens, explaining a request and then checking it over gRPC give
 * the same decision and code, and both match an independent reference of TEST_POLICY (helpers/explain.ts)
 * written here by hand — not the service's evaluator — so an allow is only accepted when it is legitimate.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { startTestApp, type TestApp } from './helpers/app';
import { deniedBody, type CheckResult } from './helpers/grpc-client';
import { BOOTSTRAP, explainCall, policyFile, serviceToken } from './helpers/explain';

interface Holder { readonly scopes: string[]; readonly workspaces: string[]; readonly expired?: boolean }
const HOLDERS: Record<string, Holder> = {
  reader: { scopes: ['workflows:read'], workspaces: ['ws-a'] },
  vault: { scopes: ['vault:read', 'vault:write'], workspaces: ['ws-b'] },
  star: { scopes: ['workflows:read', 'vault:read'], workspaces: ['*'] },
  bare: { scopes: [], workspaces: [] },
  expired: { scopes: ['vault:read'], workspaces: ['ws-a'], expired: true },
};
type TokenChoice = 'none' | 'garbage' | keyof typeof HOLDERS;

interface Req { method: string; path: string; token: TokenChoice; context: Record<string, string> }
interface Expect { allow: boolean; code: string | null }

/** TEST_POLICY by hand: first match wins, context extensions override, shadow allows what it would deny. */
function oracle(r: Req): Expect {
  const s = r.path.split('/').filter(Boolean);
  const read = r.method === 'GET' || r.method === 'HEAD';
  let scopes: string[] = [];
  let workspace: string | undefined;
  let auth = 'required';
  let shadow = false;
  if (read && s[0] === 'api' && s[1] === 'credentials') scopes = ['vault:read'];
  else if (read && s[0] === 'api' && s[1] === 'workflows') scopes = ['workflows:read'];
  else if (s[0] === 'api' && s[1] === 'workspaces' && s.length >= 3) workspace = s[2];
  else if (s[0] === 'api' && s[1] === 'beta') [scopes, shadow] = [['vault:write'], true];
  else if (s.length === 1 && s[0] === 'healthz') auth = 'public';
  if (r.context.required_scopes !== undefined) scopes = r.context.required_scopes.split(',').filter(Boolean);
  if (r.context.auth !== undefined) auth = r.context.auth;
  if (r.context.enforce === 'false') shadow = true;
  const verdict = (code: string | null): Expect => ({ allow: code === null || shadow, code });
  if (auth === 'public') return verdict(null);
  if (r.token === 'none') return auth === 'optional' ? verdict(null) : verdict('auth.missing_token');
  if (r.token === 'garbage') return verdict('auth.invalid_token');
  const h = HOLDERS[r.token]!;
  if (h.expired) return verdict('auth.token_expired');
  if (!scopes.every((x) => h.scopes.includes(x))) return verdict('auth.missing_scope');
  if (workspace !== undefined && !h.workspaces.includes('*') && !h.workspaces.includes(workspace)) return verdict('auth.workspace_forbidden');
  return verdict(null);
}

const seg = fc.stringMatching(/^[a-z0-9-]{1,8}$/);
const ws = fc.constantFrom('ws-a', 'ws-b', 'ws-c');
const path = fc.oneof(
  seg.map((x) => `/api/credentials/${x}`),
  fc.constant('/api/workflows'),
  seg.map((x) => `/api/workflows/${x}`),
  fc.tuple(ws, seg).map(([w, x]) => `/api/workspaces/${w}/${x}`),
  ws.map((w) => `/api/workspaces/${w}`),
  seg.map((x) => `/api/beta/${x}`),
  fc.constant('/healthz'),
  seg.map((x) => `/other/${x}`),
);
const context = fc.oneof(
  { weight: 4, arbitrary: fc.constant({}) },
  fc.constant({ auth: 'optional' }),
  fc.constant({ auth: 'public' }),
  fc.constant({ required_scopes: 'vault:read' }),
  fc.constant({ enforce: 'false' }),
);
const request = fc.record({
  method: fc.constantFrom('GET', 'POST', 'DELETE'),
  path,
  token: fc.constantFrom<TokenChoice>('none', 'garbage', 'reader', 'vault', 'star', 'bare', 'expired'),
  context: context as fc.Arbitrary<Record<string, string>>,
});

const RUNS = Number(process.env.EXPLAIN_PROPERTY_RUNS ?? 120);

describe('explain and check agree, and both match the reference', () => {
  const policy = policyFile();
  let t: TestApp;
  const secrets: Record<string, string> = {};

  before(async () => {
    t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_POLICY_FILE: policy.path, ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOTSTRAP }, 'auto');
    for (const [id, h] of Object.entries(HOLDERS)) secrets[id] = await serviceToken(t.app, id, h.scopes, h.workspaces, h.expired ? Date.now() - 60_000 : undefined);
    secrets.garbage = 'garbage-token-that-no-kind-knows';
  });
  after(async () => {
    await t?.stop();
    policy.remove();
  });

  const shadowCode = (r: CheckResult): string | null => r.dynamic_metadata?.fields?.shadow_code?.stringValue ?? null;

  test(`${RUNS} random requests`, async () => {
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const token = r.token === 'none' ? undefined : secrets[r.token];
        const e = await explainCall(t.app, { method: r.method, path: r.path, context: r.context, ...(token ? { token } : {}) });
        assert.equal(e.status, 200, e.text);
        const c = await t.client.check({ method: r.method, path: r.path, contextExtensions: r.context, headers: token ? { authorization: `Bearer ${token}` } : {} });
        const checked: Expect = c.ok_response ? { allow: true, code: shadowCode(c) } : { allow: false, code: deniedBody(c).code };
        const explained: Expect = { allow: e.body.decision.allow, code: e.body.decision.code };
        const want = oracle(r);
        assert.deepEqual(explained, checked, `explain vs check for ${JSON.stringify(r)}`);
        assert.deepEqual(checked, want, `check vs reference for ${JSON.stringify(r)}`);
        assert.ok(!e.text.includes(secrets[r.token] ?? '\u0000'), 'no credential in the explanation');
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
  });
});
