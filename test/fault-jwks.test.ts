/**
 * JWKS provider down or slow, seen through the gRPC Check end to end.
 *
 * Part 1 runs the whole service (startApp, real clock). Part 2 assembles the same production pieces
 * (JWT authenticator, Check pipeline, gRPC server) with an injected clock, because the unknown-kid
 * refetch cooldown (30 s) and the stale-if-error bound (24 h) cannot be waited out in a unit run;
 * fetches, timeouts and the gRPC path stay real.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { createAuthenticatorChain } from '../src/authn/chain';
import { createJwtAuthenticator, type JwtAuthenticator } from '../src/authn/jwt';
import { BUILTIN_POLICY } from '../src/authz/builtin';
import { startGrpcServer, type GrpcServer } from '../src/grpc/server';
import { ConfigError, loadConfig } from '../src/config/load';
import { createCheckPipeline } from '../src/pipeline/check';
import { startTestApp, type TestApp } from './helpers/app';
import { AuthzClient, deniedBody, deniedHeaders, deniedStatus, okHeaders, type CheckResult } from './helpers/grpc-client';
import { epochSeconds, jwksOf, jwtOptions, makeKey, manualClock, sign, silentLogger, startJwksServer, type JwksServer, type TestKey } from './helpers/jwks-server';

const TIMEOUT_S = 1.5;
/** How slow the "slow" provider is: well past TIMEOUT_S, so a Check that waited on it would show. */
const PROVIDER_DELAY_MS = 6000;
const BACKOFF_MS = 4 * TIMEOUT_S * 1000;

let k1: TestKey;
let k2: TestKey;
before(async () => {
  [k1, k2] = await Promise.all([makeKey('RS256', 'k1'), makeKey('RS256', 'k2')]);
});

/** A fresh token per call (jti), so the verified-token cache never answers instead of the keys. */
const tokenFor = (key: TestKey, nowMs = Date.now()): Promise<string> =>
  sign({ sub: `user-${key.kid}`, jti: randomUUID(), iat: epochSeconds(nowMs), exp: epochSeconds(nowMs) + 3 * 86400 }, key);

async function timedCheck(client: AuthzClient, token: string): Promise<{ r: CheckResult; ms: number }> {
  const t0 = performance.now();
  const r = await client.check({ path: '/api/profile', headers: { authorization: `Bearer ${token}` } });
  return { r, ms: performance.now() - t0 };
}

function expectKeyUnavailable(r: CheckResult): void {
  assert.equal(r.ok_response, undefined, 'expected a deny');
  assert.equal(deniedStatus(r), 503);
  assert.equal(r.status.code, 14);
  assert.equal(deniedBody(r).code, 'auth.key_unavailable');
  assert.ok(Number(deniedHeaders(r)['retry-after']) >= 1, 'retry-after on a 503');
}

describe('JWKS provider faults, whole service (real clock)', () => {
  let jwks: JwksServer;
  let app: TestApp | undefined;
  before(async () => {
    jwks = await startJwksServer(jwksOf(k1));
  });
  after(async () => {
    await app?.stop();
    await jwks.close();
  });

  test('slow then unreachable provider: cached keys keep serving new tokens without waiting; an unknown kid while it is down is 503', async (tc) => {
    app = await startTestApp(
      { ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_JWKS_URL: jwks.jwksUrl, ORCHEO_AUTH_JWKS_TIMEOUT: String(TIMEOUT_S), ORCHEO_AUTH_JWKS_CACHE_TTL: '1', ORCHEO_AUTH_ALLOWED_ALGORITHMS: 'RS256' },
      'auto',
    );
    let first = await timedCheck(app.client, await tokenFor(k1));
    for (let i = 0; i < 50 && !first.r.ok_response; i++) {
      await sleep(50); // the startup fetch may still be in flight
      first = await timedCheck(app.client, await tokenFor(k1));
    }
    assert.equal(okHeaders(first.r)['x-orcheo-subject'], 'user-k1');
    const fetchesUp = jwks.fetches();

    // Slow provider (4x the timeout); wait out the explicit 1 s TTL (honoured: the 5 s floor only
    // applies to a provider's max-age) so the set is stale.
    jwks.setDelay(PROVIDER_DELAY_MS);
    await sleep(1200);
    const stale = await timedCheck(app.client, await tokenFor(k1));
    assert.equal(okHeaders(stale.r)['x-orcheo-subject'], 'user-k1', 'stale keys still verify');
    tc.diagnostic(`stale-key Check while the provider is slow: ${stale.ms.toFixed(1)} ms`);
    // The background refresh ran and failed on the timeout.
    const until = Date.now() + 3000;
    while (jwks.fetches() === fetchesUp && Date.now() < until) await sleep(20);
    assert.ok(jwks.fetches() > fetchesUp, 'a background refresh was attempted');
    await sleep(TIMEOUT_S * 1000 + 100);

    jwks.setDelay(0);
    jwks.setDown('reset');
    const down = await timedCheck(app.client, await tokenFor(k1));
    assert.equal(okHeaders(down.r)['x-orcheo-subject'], 'user-k1', 'stale keys verify while the provider resets connections');

    // Unknown kid while the provider is down: the set we hold may be the outdated one, so it is not
    // the caller's failure but ours (503), whether a refetch is tried now or the cooldown forbids it.
    const unknown = await timedCheck(app.client, await tokenFor(k2));
    expectKeyUnavailable(unknown.r);
    const again = await timedCheck(app.client, await tokenFor(k2));
    expectKeyUnavailable(again.r);
    tc.diagnostic(`unknown kid while the provider is down: ${unknown.ms.toFixed(1)} ms`);
  });

  test('provider slower than ORCHEO_AUTH_JWKS_TIMEOUT and nothing fetched yet: 503 auth.key_unavailable within the timeout', async (tc) => {
    await app?.stop();
    app = undefined;
    jwks.setDown(false);
    jwks.setDelay(PROVIDER_DELAY_MS);
    const before = jwks.fetches();
    app = await startTestApp(
      { ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_JWKS_URL: jwks.jwksUrl, ORCHEO_AUTH_JWKS_TIMEOUT: String(TIMEOUT_S), ORCHEO_AUTH_ALLOWED_ALGORITHMS: 'RS256' },
      'auto',
      undefined,
      // A backoff longer than the timeout, so the second Check below is still inside it.
      { intervals: { jwksBackoffMs: BACKOFF_MS } },
    );
    // The startup fetch is in flight: this Check waits for it, bounded by the timeout.
    const waiting = await timedCheck(app.client, await tokenFor(k1));
    tc.diagnostic(`Check waiting on a slow first fetch: ${waiting.ms.toFixed(1)} ms (timeout ${TIMEOUT_S * 1000} ms, provider delay ${PROVIDER_DELAY_MS} ms)`);
    expectKeyUnavailable(waiting.r);
    assert.ok(jwks.fetches() > before, 'the provider was asked');
    // During the failure backoff: at once, no new fetch.
    const fetched = jwks.fetches();
    const backoff = await timedCheck(app.client, await tokenFor(k2));
    expectKeyUnavailable(backoff.r);
    assert.equal(jwks.fetches(), fetched, 'no fetch during the backoff');
    tc.diagnostic(`answer during the backoff: ${backoff.ms.toFixed(1)} ms`);
    // The readiness probe reports the JWKS as primed (a settled attempt), so the pod is not stuck.
    const ready = await fetch(`http://127.0.0.1:${app.app.httpPort}/readyz`);
    assert.equal(((await ready.json()) as { checks: { jwks: boolean } }).checks.jwks, true);
  });
});

describe('JWKS provider faults past the refetch cooldown (production pieces, injected clock)', () => {
  let jwks: JwksServer;
  let jwt: JwtAuthenticator;
  let server: GrpcServer;
  let client: AuthzClient;
  const clock = manualClock(Date.now());

  before(async () => {
    jwks = await startJwksServer(jwksOf(k1));
    jwt = createJwtAuthenticator(jwtOptions({ jwksUrl: jwks.jwksUrl, jwksTimeoutSeconds: TIMEOUT_S, allowedAlgorithms: ['RS256'] }), { logger: silentLogger, now: clock.now })!;
    await jwt.ready();
    const check = createCheckPipeline({
      mode: () => 'required',
      authenticator: createAuthenticatorChain([jwt]),
      policy: () => BUILTIN_POLICY,
      limits: { ip: 0, identity: 0, xffTrustedHops: 0 },
      logger: silentLogger,
      now: clock.now,
    });
    server = await startGrpcServer({ host: '127.0.0.1', port: 0, check, logger: silentLogger });
    server.setServing(true);
    client = new AuthzClient(server.port);
  });
  after(async () => {
    client?.close();
    await server?.shutdown(1000);
    jwt?.close();
    await jwks?.close();
  });

  test('slow provider, unknown kid after the cooldown: 503 auth.key_unavailable within the timeout; known kids still served', async (tc) => {
    assert.ok((await timedCheck(client, await tokenFor(k1, clock.now()))).r.ok_response);
    jwks.setDelay(PROVIDER_DELAY_MS);
    clock.advance(31_000);
    const fetched = jwks.fetches();
    const unknown = await timedCheck(client, await tokenFor(k2, clock.now()));
    tc.diagnostic(`unknown kid, slow provider: ${unknown.ms.toFixed(1)} ms`);
    expectKeyUnavailable(unknown.r);
    assert.equal(jwks.fetches(), fetched + 1, 'exactly one refetch, which the Check waited for (it failed on the timeout)');
    const known = await timedCheck(client, await tokenFor(k1, clock.now()));
    assert.equal(okHeaders(known.r)['x-orcheo-subject'], 'user-k1', 'stale set still serves its kids');
    tc.diagnostic(`known kid, slow provider: ${known.ms.toFixed(1)} ms`);
  });

  test('provider resetting connections: unknown kid 503; a random-kid flood costs at most one fetch per cooldown', async (tc) => {
    jwks.setDelay(0);
    jwks.setDown('reset');
    clock.advance(31_000);
    const fetched = jwks.fetches();
    const first = await timedCheck(client, await tokenFor(k2, clock.now()));
    expectKeyUnavailable(first.r);
    tc.diagnostic(`unknown kid, provider resetting: ${first.ms.toFixed(1)} ms`);
    const flood = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => (await client.check({ headers: { authorization: `Bearer ${await sign({ sub: 'x', exp: epochSeconds(clock.now()) + 600 }, k2, { kid: `random-${i}` })}` } })) as CheckResult),
    );
    // The last attempt failed, so the set we hold may be outdated: 503 inside the cooldown too (contract,
    // "Deny"); with the provider up the same flood is 401 (jwt-jwks "flood of random kids").
    assert.ok(flood.every((r) => deniedBody(r).code === 'auth.key_unavailable'), 'random kids while the provider is down are 503');
    assert.equal(jwks.fetches(), fetched + 1, 'one fetch for 201 unknown kids');
  });

  test('provider back with a rotated key: the new kid is accepted after the cooldown', async () => {
    jwks.setDown(false);
    jwks.setKeys(jwksOf(k1, k2));
    clock.advance(31_000);
    assert.equal(okHeaders((await timedCheck(client, await tokenFor(k2, clock.now()))).r)['x-orcheo-subject'], 'user-k2');
  });

  test('SSRF and key injection through the token: jku, x5u and an embedded jwk are never fetched or trusted', async () => {
    const attacker = await startJwksServer();
    try {
      const evil = await makeKey('RS256', 'k1'); // same kid as the real key, attacker's material
      attacker.setKeys(jwksOf(evil));
      jwks.setDown(false);
      const header = { jku: attacker.jwksUrl, x5u: `${attacker.url}/cert.pem`, jwk: evil.publicJwk };
      const forged = await sign({ sub: 'attacker', exp: epochSeconds(clock.now()) + 600 }, evil, { header });
      const r = (await client.check({ path: '/api/profile', headers: { authorization: `Bearer ${forged}` } })) as CheckResult;
      assert.equal(deniedStatus(r), 401);
      assert.equal(deniedBody(r).code, 'auth.invalid_token');
      const unknownKid = await sign({ sub: 'attacker', exp: epochSeconds(clock.now()) + 600 }, evil, { kid: 'attacker-kid', header });
      assert.equal(deniedBody((await client.check({ headers: { authorization: `Bearer ${unknownKid}` } })) as CheckResult).code, 'auth.invalid_token');
      assert.equal(attacker.fetches(), 0, 'the jku URL was fetched');
      assert.equal(attacker.lastRequest(), undefined, 'the attacker server received a request');
    } finally {
      await attacker.close();
    }
  });

  test('stale keys are bounded: 24 h after the last fetch with the provider down, even known kids are 503', async () => {
    jwks.setDown('status');
    const cached = await tokenFor(k1, clock.now());
    assert.ok((await timedCheck(client, cached)).r.ok_response, 'within the bound');
    assert.ok((await timedCheck(client, cached)).r.ok_response, 'and now in the verified-token cache');
    clock.advance(24 * 3600 * 1000 + 60_000);
    expectKeyUnavailable((await timedCheck(client, await tokenFor(k1, clock.now()))).r);
    // The verified-token cache does not outlive its keys either (the token itself is still unexpired).
    expectKeyUnavailable((await timedCheck(client, cached)).r);
  });
});

test('SSRF through configuration: a JWKS or OIDC URL that is not http(s) is a startup error naming the variable', () => {
  for (const [name, value] of [
    ['ORCHEO_AUTH_JWKS_URL', 'file:///etc/passwd'],
    ['ORCHEO_AUTH_JWKS_URL', 'gopher://127.0.0.1:6379/_FLUSHALL'],
    ['ORCHEO_AUTH_OIDC_ISSUER', 'ftp://idp.example'],
    ['ORCHEO_AUTH_JWKS_URL', 'not a url'],
  ] as const) {
    assert.throws(() => loadConfig({ [name]: value }), (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.startsWith(`${name}:`)), `${name}=${value}`);
  }
  assert.equal(loadConfig({ ORCHEO_AUTH_JWKS_URL: 'https://idp.example/jwks' }).jwt.jwksUrl, 'https://idp.example/jwks');
});
