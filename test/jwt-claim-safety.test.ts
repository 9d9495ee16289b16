/**
 * Claims that would smuggle a header line, a wildcard workspace nobody granted, or a token that never
 * expires: refused (or dropped) through the real gRPC Check, unless the operator opted in.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from './helpers/app';
import { deniedBody, okHeaders } from './helpers/grpc-client';
import { sign } from './helpers/jwks-server';

const SECRET = 'claim-safety-secret-0123456789abcdef0123456789abcdef';
const now = (): number => Math.floor(Date.now() / 1000);
const hs = (payload: Record<string, unknown>): Promise<string> => sign(payload, { alg: 'HS256', secret: SECRET });

describe('JWT claim safety through Check (defaults)', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ ORCHEO_AUTH_JWT_SECRET: SECRET }, 'auto');
  });
  after(() => t.stop());
  const check = async (payload: Record<string, unknown>, path = '/api/workflows') =>
    t.client.check({ path, headers: { authorization: `Bearer ${await hs(payload)}` } });

  test('control characters in sub, jti, a scope or a workspace: auth.invalid_token, never a header value', async () => {
    const base = { sub: 'user-1', exp: now() + 600, scope: 'workflows:read', workspace_ids: ['ws-a'] };
    const cases: Array<[string, Record<string, unknown>]> = [];
    for (const ch of ['\r', '\n', '\u0000', '\u007f', '\t', '\u0085']) {
      const tag = JSON.stringify(ch);
      cases.push([`sub ${tag}`, { ...base, sub: `user${ch}x-orcheo-subject: admin` }]);
      cases.push([`jti ${tag}`, { ...base, jti: `j${ch}1` }]);
      cases.push([`scope ${tag}`, { ...base, scope: [`workflows:read${ch}evil`] }]);
      cases.push([`workspace ${tag}`, { ...base, workspace_ids: [`ws-a${ch}evil`] }]);
    }
    for (const [label, payload] of cases) {
      assert.equal(deniedBody(await check(payload)).code, 'auth.invalid_token', label);
    }
    // The same token without the control character is allowed: the refusal is about the character.
    assert.equal(okHeaders(await check({ ...base, jti: 'j1' }))['x-orcheo-token-id'], 'j1');
  });

  test('a * in the workspace claims is dropped: no access to a workspace route', async () => {
    const r = await check({ sub: 'user-2', exp: now() + 600, workspace_ids: ['*'] }, '/api/workspaces/ws-b/things');
    assert.equal(deniedBody(r).code, 'auth.workspace_forbidden');
    const listed = await check({ sub: 'user-2', exp: now() + 600, workspace_ids: ['*', 'ws-b'] }, '/api/workspaces/ws-b/things');
    assert.equal(okHeaders(listed)['x-orcheo-workspaces'], 'ws-b');
  });

  test('a JWT without exp is auth.invalid_token', async () => {
    assert.equal(deniedBody(await check({ sub: 'user-3' })).code, 'auth.invalid_token');
  });
});

describe('JWT claim safety through Check (operator opted in)', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ ORCHEO_AUTH_JWT_SECRET: SECRET, ORCHEO_AUTH_JWT_REQUIRE_EXP: 'false', ORCHEO_AUTH_JWT_WILDCARD_WORKSPACE: 'true' }, 'auto');
  });
  after(() => t.stop());

  test('ORCHEO_AUTH_JWT_WILDCARD_WORKSPACE=true honours *, ORCHEO_AUTH_JWT_REQUIRE_EXP=false accepts no exp', async () => {
    const token = await hs({ sub: 'user-4', workspace_ids: ['*'] });
    const h = okHeaders(await t.client.check({ path: '/api/workspaces/ws-z/x', headers: { authorization: `Bearer ${token}` } }));
    assert.equal(h['x-orcheo-subject'], 'user-4');
    assert.equal(h['x-orcheo-workspaces'], '*');
  });
});
