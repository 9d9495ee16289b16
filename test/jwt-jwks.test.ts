/**
 * Remote JWKS behaviour against a real local HTTP provider: rotation, stale-if-error, the unknown
 * kid refetch (cooldown, coalescing), Cache-Control max-age, timeouts, and cache invalidation when
 * a key leaves the set. Time is an injected clock, so cooldowns and TTLs need no real waiting.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createJwtAuthenticator, type JwtAuthenticator, type JwtOptions } from '../src/authn/jwt';
import type { AuthnResult } from '../src/authn/types';
import { pollUntil, watchdog } from './helpers/wait';
import { codeOf, epochSeconds, jwksOf, type JwksServer, jwtOptions, makeKey, manualClock, sign, silentLogger, startJwksServer, type TestKey } from './helpers/jwks-server';

let server: JwksServer;
let k1: TestKey;
let k2: TestKey;
let stranger: TestKey;
let clock: ReturnType<typeof manualClock>;
const made: JwtAuthenticator[] = [];

before(async () => {
  [k1, k2, stranger] = await Promise.all([makeKey('RS256', 'k1'), makeKey('RS256', 'k2'), makeKey('RS256', 'stranger')]);
  server = await startJwksServer();
});
after(async () => {
  made.forEach((a) => a.close());
  await server.close();
});
beforeEach(() => {
  clock = manualClock();
  server.setKeys(jwksOf(k1));
  server.setDown(false);
  server.setDelay(0);
  server.setCacheControl(undefined);
  server.setDiscovery(undefined);
});

async function make(o: Partial<JwtOptions> = {}): Promise<JwtAuthenticator> {
  const a = createJwtAuthenticator(jwtOptions({ jwksUrl: server.jwksUrl, ...o }), { logger: silentLogger, now: clock.now });
  assert.ok(a);
  made.push(a);
  await a.ready();
  return a;
}
/** A distinct token each call (jti), so the verified-token cache never hides a key lookup. */
const tokenFor = (key: TestKey, kid: string = key.kid): Promise<string> =>
  sign({ sub: 'user', jti: randomUUID(), exp: epochSeconds(clock.now()) + 3600 }, key, { kid });
const auth = async (a: JwtAuthenticator, token: string): Promise<string> => codeOf(await a.authenticate(token, clock.now()));

async function waitFor(cond: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  await pollUntil(what, cond, { timeoutMs, everyMs: 5 });
  await new Promise((r) => setImmediate(r)); // let the fetch's continuation settle
}

describe('remote JWKS', () => {
  it('fetches once at startup; ready() and primed report it', async () => {
    const before = server.fetches();
    const a = await make();
    assert.equal(a.primed(), true);
    assert.equal(server.fetches() - before, 1);
    assert.equal(await auth(a, await tokenFor(k1)), 'identified');
    assert.deepEqual({ f: a.stats().jwksFetches, e: a.stats().jwksFetchFailures }, { f: 1, e: 0 });
  });

  it('key rotation: a newly published kid is accepted without waiting for the TTL', async () => {
    const a = await make({ jwksCacheTtlSeconds: 3600 });
    server.setKeys(jwksOf(k1, k2));
    // Right after the startup fetch: the cooldown counts only refetches caused by unknown kids, so
    // the first token carrying the new kid refetches at once and is accepted.
    const before = server.fetches();
    assert.equal(await auth(a, await tokenFor(k2)), 'identified');
    assert.equal(server.fetches() - before, 1);
    assert.equal(await auth(a, await tokenFor(k1)), 'identified');
    // A second key published now waits out the cooldown (random kids must stay cheap)...
    const k3 = await makeKey('RS256', 'k3');
    server.setKeys(jwksOf(k1, k2, k3));
    assert.equal(await auth(a, await tokenFor(k3)), 'auth.invalid_token');
    assert.equal(server.fetches() - before, 1, 'no refetch inside the cooldown');
    // ...and is accepted after it.
    clock.advance(31_000);
    assert.equal(await auth(a, await tokenFor(k3)), 'identified');
    assert.equal(server.fetches() - before, 2);
  });

  it('reports the age of the key set in use (the key-set-age metric)', async () => {
    const a = await make({ jwksCacheTtlSeconds: 3600 });
    const at = a.stats().jwksKeySetAgeSeconds;
    assert.equal(at, 0);
    clock.advance(7_000);
    assert.equal(a.stats().jwksKeySetAgeSeconds, 7);
  });

  it('an explicit TTL below the 5 s floor is honoured (the floor only applies to max-age)', async () => {
    const a = await make({ jwksCacheTtlSeconds: 2 });
    const before = server.fetches();
    clock.advance(2_100);
    assert.equal(await auth(a, await tokenFor(k1)), 'identified');
    await waitFor(() => server.fetches() - before === 1, 'routine refresh after the 2 s TTL');
  });

  it('provider down with cached keys: tokens still accepted (stale-if-error), fetch retried later', async () => {
    const a = await make({ jwksCacheTtlSeconds: 60 });
    server.setDown('status');
    clock.advance(61_000); // past the TTL
    const before = server.fetches();
    assert.equal(await auth(a, await tokenFor(k1)), 'identified');
    await waitFor(() => a.stats().jwksFetchFailures === 1, 'background refresh to fail');
    assert.equal(server.fetches() - before, 1);
    assert.equal(await auth(a, await tokenFor(k1)), 'identified', 'no retry during the failure backoff');
    assert.equal(server.fetches() - before, 1);
    clock.advance(5_000);
    server.setDown(false);
    server.setKeys(jwksOf(k1, k2));
    assert.equal(await auth(a, await tokenFor(k1)), 'identified');
    await waitFor(() => server.fetches() - before === 2 && a.stats().jwksFetchFailures === 1, 'retry');
    assert.equal(await auth(a, await tokenFor(k2)), 'identified', 'the retried fetch installed the new set');
  });

  it('stale keys are only trusted for a bounded time (24 h), cached tokens included', async () => {
    const a = await make();
    const longLived = await sign({ sub: 'user', exp: epochSeconds(clock.now()) + 7 * 86400 }, k1);
    assert.equal(await auth(a, longLived), 'identified');
    server.setDown('reset');
    clock.advance(24 * 3600_000 + 1000);
    const r = await a.authenticate(await tokenFor(k1), clock.now());
    assert.equal(codeOf(r), 'auth.key_unavailable');
    assert.equal(await auth(a, longLived), 'auth.key_unavailable', 'the cache does not outlive its keys');
  });

  it('provider down and unknown kid → key_unavailable (503), during the cooldown too', async () => {
    const a = await make();
    server.setDown('status');
    clock.advance(31_000);
    const r = await a.authenticate(await tokenFor(k2), clock.now());
    assert.equal(codeOf(r), 'auth.key_unavailable');
    assert.equal(r.kind === 'rejected' && r.error.httpStatus, 503);
    assert.ok(r.kind === 'rejected' && (r.error.retryAfterSeconds ?? 0) > 0);
    // The last attempt failed, so the set we hold may be outdated: still 503 within the cooldown, and
    // no second fetch.
    const fetched = server.fetches();
    assert.equal(await auth(a, await tokenFor(k2)), 'auth.key_unavailable');
    assert.equal(server.fetches(), fetched);
    assert.equal(await auth(a, await tokenFor(k1)), 'identified', 'known keys keep working');
  });

  it('nothing ever fetched and provider down → key_unavailable, recovers once it is back', async () => {
    server.setDown('reset');
    const a = await make();
    assert.equal(a.primed(), true, 'primed even though the first fetch failed');
    assert.equal(a.stats().jwksFetchFailures, 1);
    assert.equal(await auth(a, await tokenFor(k1)), 'auth.key_unavailable');
    server.setDown(false);
    assert.equal(await auth(a, await tokenFor(k1)), 'auth.key_unavailable', 'still within the failure backoff');
    clock.advance(5_000);
    assert.equal(await auth(a, await tokenFor(k1)), 'identified');
  });

  it('a fetch slower than the timeout fails fast and is a key_unavailable, not a hang', async (t) => {
    // A provider that would answer after a minute: ready() must settle on the 0.2 s timeout instead.
    server.setDelay(60_000);
    t.after(() => server.setDelay(0));
    const a = await watchdog(make({ jwksTimeoutSeconds: 0.2 }), 20_000, 'ready() waited for the provider, not for its timeout');
    assert.equal(a.stats().jwksFetchFailures, 1);
    assert.equal(await auth(a, await tokenFor(k1)), 'auth.key_unavailable');
  });

  it('a malformed key set response keeps the last good set', async () => {
    const a = await make();
    server.setKeys({ keys: 'garbage' } as unknown as { keys: unknown[] });
    clock.advance(31_000);
    assert.equal(codeOf(await a.authenticate(await tokenFor(k2), clock.now())), 'auth.key_unavailable');
    assert.equal(await auth(a, await tokenFor(k1)), 'identified');
    assert.equal(a.stats().jwksFetchFailures, 1);
  });

  it('1,000 requests with random kids cause at most 2 fetches', async () => {
    const a = await make();
    clock.advance(31_000); // cooldown over: the burst may trigger exactly one refetch
    const before = server.fetches();
    const tokens = await Promise.all(Array.from({ length: 1000 }, () => tokenFor(stranger, randomUUID())));
    const concurrent = await Promise.all(tokens.slice(0, 500).map((t) => a.authenticate(t, clock.now())));
    const sequential: AuthnResult[] = [];
    for (const t of tokens.slice(500)) sequential.push(await a.authenticate(t, clock.now()));
    for (const r of [...concurrent, ...sequential]) assert.equal(codeOf(r), 'auth.invalid_token');
    const total = server.fetches() - before + 1; // + the startup fetch
    assert.ok(total <= 2, `fetches: ${total}`);
    assert.ok(a.stats().jwksFetches <= 2);
  });

  it('concurrent requests for a new kid share one in-flight refetch', async () => {
    const a = await make();
    server.setKeys(jwksOf(k1, k2));
    server.setDelay(150);
    clock.advance(31_000);
    const before = server.fetches();
    const tokens = await Promise.all(Array.from({ length: 50 }, () => tokenFor(k2)));
    const results = await Promise.all(tokens.map((t) => a.authenticate(t, clock.now())));
    for (const r of results) assert.equal(codeOf(r), 'identified');
    assert.equal(server.fetches() - before, 1);
  });

  it('Cache-Control max-age shortens the TTL', async () => {
    server.setCacheControl('public, max-age=60');
    const a = await make({ jwksCacheTtlSeconds: 300 });
    const token = await tokenFor(k1);
    assert.equal(await auth(a, token), 'identified');
    const before = server.fetches();
    clock.advance(59_000);
    assert.equal(await auth(a, token), 'identified');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(server.fetches() - before, 0, 'still fresh at 59 s');
    clock.advance(2_000);
    assert.equal(await auth(a, token), 'identified', 'a cache hit also notices staleness');
    await waitFor(() => server.fetches() - before === 1, 'refresh after max-age');
  });

  it('the configured TTL wins over a longer max-age', async () => {
    server.setCacheControl('max-age=86400');
    const a = await make({ jwksCacheTtlSeconds: 120 });
    const before = server.fetches();
    clock.advance(121_000);
    assert.equal(await auth(a, await tokenFor(k1)), 'identified');
    await waitFor(() => server.fetches() - before === 1, 'refresh after the configured TTL');
  });

  it('a cached token is dropped when its kid leaves the set (unknown-kid refetch)', async () => {
    server.setKeys(jwksOf(k1));
    const a = await make();
    const old = await tokenFor(k1);
    assert.equal(await auth(a, old), 'identified');
    assert.equal(a.stats().cacheSize, 1);
    server.setKeys(jwksOf(k2));
    clock.advance(31_000);
    assert.equal(await auth(a, await tokenFor(k2)), 'identified');
    const hitsBefore = a.stats().cacheHits;
    assert.equal(await auth(a, old), 'auth.invalid_token');
    assert.equal(a.stats().cacheHits, hitsBefore, 'answered by verification, not the cache');
  });

  it('a cached token is dropped when its kid leaves the set (TTL refresh)', async () => {
    const a = await make({ jwksCacheTtlSeconds: 60 });
    const old = await tokenFor(k1);
    assert.equal(await auth(a, old), 'identified');
    server.setKeys(jwksOf(k2));
    clock.advance(61_000);
    const before = server.fetches();
    await auth(a, old); // hit; starts the background refresh
    await waitFor(() => server.fetches() - before === 1 && a.stats().cacheSize === 0, 'rotation to drop the entry');
    assert.equal(await auth(a, old), 'auth.invalid_token');
  });

  it('a kid reused for a different key counts as removed', async () => {
    const a = await make();
    const old = await tokenFor(k1);
    assert.equal(await auth(a, old), 'identified');
    const reused = await makeKey('RS256', 'k1');
    server.setKeys(jwksOf(reused));
    clock.advance(31_000);
    assert.equal(await auth(a, await tokenFor(reused)), 'auth.invalid_token', 'kid is known, signature mismatch: no refetch');
    clock.advance(301_000);
    await a.authenticate(await tokenFor(k2), clock.now()); // unknown kid → refetch installs the reused kid
    assert.equal(a.stats().cacheSize, 0);
    assert.equal(await auth(a, old), 'auth.invalid_token');
    assert.equal(await auth(a, await tokenFor(reused)), 'identified');
  });

  it('static keys and remote keys together', async () => {
    const a = await make({ staticJwks: jwksOf(k2) });
    assert.equal(await auth(a, await tokenFor(k2)), 'identified');
    assert.equal(await auth(a, await tokenFor(k1)), 'identified');
  });

  it('close() stops further fetches', async () => {
    const a = await make();
    a.close();
    clock.advance(31_000);
    const before = server.fetches();
    assert.equal(await auth(a, await tokenFor(k2)), 'auth.key_unavailable');
    assert.equal(server.fetches() - before, 0);
  });
});
