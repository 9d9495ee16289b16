/** Claim → Identity mapping: every spelling of scopes, workspaces and identity type, and garbage. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createJwtAuthenticator } from '../src/authn/jwt';
import { identityFromClaims, identityTypeOf, scopesOf, workspacesOf } from '../src/authn/jwt/claims';
import type { AuthnResult, Identity } from '../src/authn/types';
import { epochSeconds, jwtOptions, manualClock, sign, silentLogger } from './helpers/jwks-server';

const sorted = (s: ReadonlySet<string>): string[] => [...s].sort();

describe('scopes claim variants', () => {
  const cases: Array<[string, Record<string, unknown>, string[]]> = [
    ['scope space-separated', { scope: 'a b  c' }, ['a', 'b', 'c']],
    ['scope comma-separated', { scope: 'a,b, c' }, ['a', 'b', 'c']],
    ['scopes array', { scopes: ['a', 'b'] }, ['a', 'b']],
    ['scp array (Azure)', { scp: ['x:read', 'x:write'] }, ['x:read', 'x:write']],
    ['scp string', { scp: 'x:read' }, ['x:read']],
    ['JSON-list string', { scope: '["a","b"]' }, ['a', 'b']],
    ['JSON-list string with spaces', { scopes: ' [ "a", "b" ] ' }, ['a', 'b']],
    ['broken JSON list falls back to splitting', { scope: '[a b' }, ['[a', 'b']],
    ['orcheo.scopes', { orcheo: { scopes: ['workflows:read', 'workflows:execute'] } }, ['workflows:execute', 'workflows:read']],
    ['union of all claims', { scope: 'a', scopes: ['b'], scp: 'c,d', orcheo: { scopes: 'e' } }, ['a', 'b', 'c', 'd', 'e']],
    ['duplicates collapse', { scope: 'a a', scopes: ['a'] }, ['a']],
    ['array elements that are delimited strings', { scopes: ['a b', 'c,d'] }, ['a', 'b', 'c', 'd']],
    ['empty string', { scope: '' }, []],
    ['absent', {}, []],
  ];
  for (const [name, payload, expected] of cases) {
    it(name, () => assert.deepEqual(sorted(scopesOf(payload)), expected));
  }
});

describe('workspaces claim variants', () => {
  const cases: Array<[string, Record<string, unknown>, string[]]> = [
    ['workspace_ids array', { workspace_ids: ['ws-1', 'ws-2'] }, ['ws-1', 'ws-2']],
    ['workspaces string', { workspaces: 'ws-1 ws-2' }, ['ws-1', 'ws-2']],
    ['workspace_id single', { workspace_id: 'ws-1' }, ['ws-1']],
    ['workspace single', { workspace: 'ws-9' }, ['ws-9']],
    ['JSON-list string', { workspace_ids: '["ws-1","ws-2"]' }, ['ws-1', 'ws-2']],
    ['comma list', { workspaces: 'ws-1,ws-2' }, ['ws-1', 'ws-2']],
    ['orcheo.workspace_ids', { orcheo: { workspace_ids: ['ws-production', 'ws-staging'] } }, ['ws-production', 'ws-staging']],
    ['wildcard', { workspace_ids: ['*'] }, ['*']],
    ['union', { workspace_ids: ['a'], workspaces: 'b', workspace_id: 'c', workspace: 'd', orcheo: { workspace_ids: '["e"]' } }, ['a', 'b', 'c', 'd', 'e']],
  ];
  for (const [name, payload, expected] of cases) {
    it(name, () => assert.deepEqual(sorted(workspacesOf(payload)), expected));
  }
});

describe('garbage claim values are ignored', () => {
  it('numbers, booleans, objects, null, nested nonsense', () => {
    const payload = {
      scope: 42,
      scopes: { a: 1 },
      scp: [1, null, true, { x: 'y' }, ['ok', [['deep', [[['too-deep']]]]]]],
      orcheo: ['not', 'an', 'object'],
      workspace_ids: null,
      workspaces: false,
      workspace_id: 7,
      workspace: { id: 'x' },
    };
    // 'ok' is two levels down; 'deep' is past the nesting bound and dropped.
    assert.deepEqual(sorted(scopesOf(payload)), ['ok']);
    assert.deepEqual(sorted(workspacesOf(payload)), []);
    assert.equal(identityTypeOf({ token_use: 5, type: {}, typ: null }), 'user');
  });
  it('orcheo object with garbage members', () => {
    assert.deepEqual(sorted(scopesOf({ orcheo: { scopes: 3 } })), []);
    assert.deepEqual(sorted(workspacesOf({ orcheo: { workspace_ids: { a: 'b' } } })), []);
    assert.deepEqual(sorted(scopesOf({ orcheo: null })), []);
  });
  it('a huge list is bounded', () => {
    const many = Array.from({ length: 5000 }, (_, i) => `s${i}`);
    assert.equal(scopesOf({ scopes: many }).size, 1000);
  });
});

describe('identity type', () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ token_use: 'client' }, 'service'],
    [{ token_use: 'service' }, 'service'],
    [{ type: 'service' }, 'service'],
    [{ typ: 'client' }, 'service'],
    [{ typ: 'Service' }, 'service'],
    [{ type: 'user' }, 'user'],
    [{ token_use: 'access' }, 'user'],
    [{ typ: 'JWT' }, 'user'],
    [{}, 'user'],
    // token_use is read first: an access token whose `typ` says service is still a user token.
    [{ token_use: 'access', typ: 'service' }, 'user'],
    [{ token_use: '', type: 'client' }, 'service'],
  ];
  for (const [payload, expected] of cases) {
    it(`${JSON.stringify(payload)} → ${expected}`, () => assert.equal(identityTypeOf(payload), expected));
  }
});

describe('identityFromClaims', () => {
  const now = Date.UTC(2030, 0, 1);
  it('maps sub, jti, exp', () => {
    const out = identityFromClaims({ sub: 'u1', jti: 'j1', exp: epochSeconds(now) + 60 }, now, 30);
    assert.ok(out.ok);
    assert.equal(out.identity.subject, 'u1');
    assert.equal(out.identity.tokenId, 'j1');
    assert.equal(out.identity.expiresAt, (epochSeconds(now) + 60) * 1000);
    assert.equal(out.identity.source, 'jwt');
    assert.equal(out.identity.authenticated, true);
    assert.ok(Object.isFrozen(out.identity));
  });
  it('tokenId falls back to sub', () => {
    const out = identityFromClaims({ sub: 'u1', jti: 3 as unknown as string }, now, 30, { requireExp: false });
    assert.ok(out.ok);
    assert.equal(out.identity.tokenId, 'u1');
    assert.equal(out.identity.expiresAt, undefined);
  });
  it('no string sub is refused', () => {
    for (const sub of [undefined, '', 12, ['a']]) {
      const out = identityFromClaims({ sub: sub as string }, now, 30);
      assert.equal(out.ok, false);
    }
  });
  it('iat beyond the leeway in the future is refused, within it accepted', () => {
    const exp = epochSeconds(now) + 600;
    assert.equal(identityFromClaims({ sub: 'u', exp, iat: epochSeconds(now) + 31 }, now, 30).ok, false);
    assert.equal(identityFromClaims({ sub: 'u', exp, iat: epochSeconds(now) + 30 }, now, 30).ok, true);
  });
});

describe('claims end to end through a signed HS256 token', () => {
  const secret = 'claims-test-secret-that-is-long-enough-for-hs512-0123456789';
  const clock = manualClock();
  const authn = createJwtAuthenticator(jwtOptions({ secret }), { logger: silentLogger, now: clock.now });
  assert.ok(authn);

  async function identityOf(payload: Record<string, unknown>): Promise<Identity> {
    const token = await sign({ sub: 'user-1', exp: epochSeconds(clock.now()) + 600, ...payload }, { alg: 'HS256', secret });
    const result: AuthnResult = await authn!.authenticate(token, clock.now());
    assert.equal(result.kind, 'identified', JSON.stringify(result));
    return (result as { identity: Identity }).identity;
  }

  it('the guide example (orcheo nested claims)', async () => {
    const id = await identityOf({
      sub: 'user-123',
      orcheo: { scopes: ['workflows:read', 'workflows:execute'], workspace_ids: ['ws-production', 'ws-staging'] },
    });
    assert.equal(id.subject, 'user-123');
    assert.equal(id.tokenId, 'user-123');
    assert.equal(id.type, 'user');
    assert.deepEqual(sorted(id.scopes), ['workflows:execute', 'workflows:read']);
    assert.deepEqual(sorted(id.workspaces), ['ws-production', 'ws-staging']);
  });
  it('service token with jti, scp and workspace_id', async () => {
    const id = await identityOf({ token_use: 'client', jti: 'tok-7', scp: 'vault:read vault:write', workspace_id: 'ws-1' });
    assert.equal(id.type, 'service');
    assert.equal(id.tokenId, 'tok-7');
    assert.deepEqual(sorted(id.scopes), ['vault:read', 'vault:write']);
    assert.deepEqual(sorted(id.workspaces), ['ws-1']);
  });
  it('garbage claims do not break verification', async () => {
    const id = await identityOf({ scope: { nested: ['x'] }, workspaces: [[[[['deep']]]]], type: 99, orcheo: 'str' });
    assert.equal(id.type, 'user');
    assert.deepEqual(sorted(id.scopes), []);
  });
  it('a token without sub is invalid_token', async () => {
    const token = await sign({ exp: epochSeconds(clock.now()) + 600 }, { alg: 'HS256', secret });
    const result = await authn!.authenticate(token, clock.now());
    assert.equal(result.kind, 'rejected');
    assert.equal(result.kind === 'rejected' && result.error.code, 'auth.invalid_token');
  });
});

describe('identical claim lists share one Set', () => {
  const now = Date.UTC(2026, 11, 4);
  const identity = (payload: Record<string, unknown>): Identity => {
    const r = identityFromClaims({ sub: 'u', exp: now / 1000 + 60, ...payload }, now, 0);
    assert.ok(r.ok, 'claims accepted');
    return r.identity;
  };

  it('two tokens with the same scope and workspace lists get the same Sets, with their content', () => {
    const a = identity({ sub: 'alice', scope: 'share:read share:write', workspace_ids: ['share-ws'] });
    const b = identity({ sub: 'bob', scope: 'share:read share:write', workspace_ids: ['share-ws'] });
    assert.equal(a.scopes, b.scopes);
    assert.equal(a.workspaces, b.workspaces);
    assert.deepEqual(sorted(a.scopes), ['share:read', 'share:write']);
    assert.deepEqual(sorted(a.workspaces), ['share-ws']);
  });

  it('different lists, or the same items in another order, are never merged', () => {
    const a = identity({ scope: 'only:a' });
    const b = identity({ scope: 'only:a only:b' });
    const c = identity({ scope: 'only:b only:a' });
    assert.notEqual(a.scopes, b.scopes);
    assert.deepEqual(sorted(a.scopes), ['only:a']);
    assert.notEqual(b.scopes, c.scopes);
    assert.deepEqual(sorted(b.scopes), sorted(c.scopes));
  });

  it('a list longer than the bound is still read in full, just not shared', () => {
    const long = Array.from({ length: 300 }, (_, i) => `long-scope-${i}`);
    const a = identity({ scopes: long });
    const b = identity({ scopes: long });
    assert.notEqual(a.scopes, b.scopes);
    assert.equal(a.scopes.size, 300);
    assert.deepEqual(sorted(b.scopes), [...long].sort());
  });
});
