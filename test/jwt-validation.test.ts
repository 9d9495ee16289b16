/** Registered claims (exp/nbf/iat with leeway, aud, iss), identityKey semantics and the verified-token cache. */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createJwtAuthenticator, type JwtAuthenticator, type JwtOptions } from '../src/authn/jwt';
import type { AuthnResult } from '../src/authn/types';
import { epochSeconds, jwtOptions, manualClock, sign, silentLogger } from './helpers/jwks-server';

const SECRET = 'validation-secret-0123456789abcdef0123456789abcdef';
const clock = manualClock();
const made: JwtAuthenticator[] = [];
after(() => made.forEach((a) => a.close()));

function make(o: Partial<JwtOptions> = {}): JwtAuthenticator {
  // These tests are about other claims; the exp requirement has its own test (jwt-claim-safety).
  const a = createJwtAuthenticator(jwtOptions({ secret: SECRET, requireExp: false, ...o }), { logger: silentLogger, now: clock.now });
  assert.ok(a);
  made.push(a);
  return a;
}
const hs = (payload: Record<string, unknown>): Promise<string> => sign(payload, { alg: 'HS256', secret: SECRET });
const nowS = (): number => epochSeconds(clock.now());

function expectRejected(result: AuthnResult, code: string, message?: string): Extract<AuthnResult, { kind: 'rejected' }> {
  assert.equal(result.kind, 'rejected', JSON.stringify(result));
  const r = result as Extract<AuthnResult, { kind: 'rejected' }>;
  assert.equal(r.error.code, code);
  if (message) assert.equal(r.error.message, message);
  return r;
}

describe('createJwtAuthenticator', () => {
  it('returns undefined without any JWT source', () => {
    assert.equal(createJwtAuthenticator(jwtOptions(), { logger: silentLogger }), undefined);
    assert.equal(createJwtAuthenticator(jwtOptions({ secret: '' }), { logger: silentLogger }), undefined);
  });
  it('rejects a malformed static JWKS at construction, naming the variable', () => {
    assert.throws(() => make({ secret: undefined, staticJwks: { keys: 'nope' } as never }), /ORCHEO_AUTH_JWKS_STATIC/);
  });
  it('is primed at once without a remote source', async () => {
    const a = make();
    assert.equal(a.primed(), true);
    await a.ready();
    assert.equal(a.name, 'jwt');
  });
});

describe('time claims', () => {
  it('exp exactly now with leeway 0 is expired, with the contract message', async () => {
    const a = make({ leewaySeconds: 0 });
    const r = expectRejected(await a.authenticate(await hs({ sub: 'u', exp: nowS() }), clock.now()), 'auth.token_expired', 'Bearer token has expired');
    assert.equal(r.identityKey, 'u', 'signature verified, so the subject is counted');
  });
  it('exp one second ahead with leeway 0 is accepted', async () => {
    const a = make({ leewaySeconds: 0 });
    assert.equal((await a.authenticate(await hs({ sub: 'u', exp: nowS() + 1 }), clock.now())).kind, 'identified');
  });
  it('leeway tolerates a recently expired token, not beyond', async () => {
    const a = make({ leewaySeconds: 30 });
    assert.equal((await a.authenticate(await hs({ sub: 'u', exp: nowS() - 29 }), clock.now())).kind, 'identified');
    expectRejected(await a.authenticate(await hs({ sub: 'u', exp: nowS() - 30 }), clock.now()), 'auth.token_expired');
  });
  it('nbf in the future is invalid_token; within leeway accepted', async () => {
    const a = make({ leewaySeconds: 10 });
    const r = expectRejected(await a.authenticate(await hs({ sub: 'u', nbf: nowS() + 11 }), clock.now()), 'auth.invalid_token', 'Invalid bearer token');
    assert.equal(r.identityKey, 'u');
    assert.equal((await a.authenticate(await hs({ sub: 'u', nbf: nowS() + 10 }), clock.now())).kind, 'identified');
  });
  it('iat in the future beyond leeway is invalid_token', async () => {
    const a = make({ leewaySeconds: 5 });
    expectRejected(await a.authenticate(await hs({ sub: 'u', iat: nowS() + 60 }), clock.now()), 'auth.invalid_token');
    assert.equal((await a.authenticate(await hs({ sub: 'u', iat: nowS() - 60 }), clock.now())).kind, 'identified');
  });
  it('non-numeric exp is invalid_token', async () => {
    const a = make();
    expectRejected(await a.authenticate(await hs({ sub: 'u', exp: String(nowS() + 60) }), clock.now()), 'auth.invalid_token');
  });
});

describe('audience and issuer', () => {
  it('any configured audience matches', async () => {
    const a = make({ audiences: ['orcheo-api', 'orcheo-ws'] });
    assert.equal((await a.authenticate(await hs({ sub: 'u', aud: 'orcheo-ws' }), clock.now())).kind, 'identified');
    assert.equal((await a.authenticate(await hs({ sub: 'u', aud: ['other', 'orcheo-api'] }), clock.now())).kind, 'identified');
  });
  it('wrong or missing audience is invalid_audience', async () => {
    const a = make({ audiences: ['orcheo-api'] });
    const r = expectRejected(await a.authenticate(await hs({ sub: 'u', aud: 'other' }), clock.now()), 'auth.invalid_audience');
    assert.equal(r.identityKey, 'u');
    expectRejected(await a.authenticate(await hs({ sub: 'u' }), clock.now()), 'auth.invalid_audience');
    expectRejected(await a.authenticate(await hs({ sub: 'u', aud: 42 }), clock.now()), 'auth.invalid_audience');
  });
  it('audience not checked when none configured', async () => {
    const a = make({ audiences: [] });
    assert.equal((await a.authenticate(await hs({ sub: 'u', aud: 'anything' }), clock.now())).kind, 'identified');
  });
  it('wrong or missing issuer is invalid_issuer', async () => {
    const a = make({ issuer: 'https://idp.example/' });
    assert.equal((await a.authenticate(await hs({ sub: 'u', iss: 'https://idp.example/' }), clock.now())).kind, 'identified');
    expectRejected(await a.authenticate(await hs({ sub: 'u', iss: 'https://evil.example/' }), clock.now()), 'auth.invalid_issuer');
    expectRejected(await a.authenticate(await hs({ sub: 'u' }), clock.now()), 'auth.invalid_issuer');
  });
  it('a bad signature never yields an identityKey', async () => {
    const a = make({ audiences: ['orcheo-api'] });
    const forged = await sign({ sub: 'victim', aud: 'orcheo-api' }, { alg: 'HS256', secret: 'wrong-secret-wrong-secret-wrong-secret' });
    const r = expectRejected(await a.authenticate(forged, clock.now()), 'auth.invalid_token');
    assert.equal(r.identityKey, undefined);
  });
});

describe('verified-token cache', () => {
  it('second presentation is a hit, answered synchronously', async () => {
    const a = make();
    const token = await hs({ sub: 'u', exp: nowS() + 120 });
    const first = await a.authenticate(token, clock.now());
    assert.equal(first.kind, 'identified');
    const second = a.authenticate(token, clock.now());
    assert.ok(!(second instanceof Promise), 'a hit must not go through a promise');
    assert.equal(second.kind, 'identified');
    assert.equal(second.kind === 'identified' && first.kind === 'identified' && second.identity, first.identity);
    const s = a.stats();
    assert.equal(s.cacheHits, 1);
    assert.equal(s.cacheMisses, 1);
    assert.equal(s.cacheSize, 1);
  });
  it('a cached token is refused the moment it expires (same leeway rule as jose)', async () => {
    const local = manualClock();
    const a = createJwtAuthenticator(jwtOptions({ secret: SECRET, leewaySeconds: 5 }), { logger: silentLogger, now: local.now })!;
    made.push(a);
    const exp = epochSeconds(local.now()) + 60;
    const token = await hs({ sub: 'u', exp });
    assert.equal((await a.authenticate(token, local.now())).kind, 'identified');
    // Last accepted instant: exp + leeway - 1 s (jose: expired iff exp <= now - leeway).
    local.set((exp + 5) * 1000 - 1);
    assert.equal((await a.authenticate(token, local.now())).kind, 'identified');
    local.set((exp + 5) * 1000);
    const r = expectRejected(await a.authenticate(token, local.now()), 'auth.token_expired');
    assert.equal(r.identityKey, 'u');
    assert.equal(a.stats().cacheSize, 0, 'expired entry dropped');
    assert.equal(a.stats().cacheHits, 2);
  });
  it('failures are not cached', async () => {
    const a = make();
    const bad = await sign({ sub: 'u' }, { alg: 'HS256', secret: 'not-the-secret-not-the-secret-123' });
    await a.authenticate(bad, clock.now());
    await a.authenticate(bad, clock.now());
    assert.equal(a.stats().cacheSize, 0);
    assert.equal(a.stats().cacheHits, 0);
  });
  it('is bounded by cacheMaxEntries', async () => {
    const a = make({ cacheMaxEntries: 3 });
    for (let i = 0; i < 10; i++) await a.authenticate(await hs({ sub: `u${i}` }), clock.now());
    assert.equal(a.stats().cacheSize, 3);
  });
  it('close() empties the cache', async () => {
    const a = make();
    await a.authenticate(await hs({ sub: 'u' }), clock.now());
    a.close();
    assert.equal(a.stats().cacheSize, 0);
  });
});
