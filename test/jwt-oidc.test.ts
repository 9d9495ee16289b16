/** OpenID Connect discovery: jwks_uri and issuer from /.well-known/openid-configuration, retries. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createJwtAuthenticator, type JwtAuthenticator, type JwtOptions } from '../src/authn/jwt';
import { codeOf, epochSeconds, jwksOf, type JwksServer, jwtOptions, makeKey, manualClock, sign, silentLogger, startJwksServer, type TestKey } from './helpers/jwks-server';

let server: JwksServer;
let other: JwksServer;
let key: TestKey;
let clock: ReturnType<typeof manualClock>;
const made: JwtAuthenticator[] = [];

before(async () => {
  key = await makeKey('ES256', 'oidc-1');
  server = await startJwksServer(jwksOf(key));
  other = await startJwksServer(jwksOf(key));
});
after(async () => {
  made.forEach((a) => a.close());
  await Promise.all([server.close(), other.close()]);
});
beforeEach(() => {
  clock = manualClock();
  server.setDown(false);
  server.setDiscovery(undefined);
});

async function make(o: Partial<JwtOptions>): Promise<JwtAuthenticator> {
  const a = createJwtAuthenticator(jwtOptions({ allowedAlgorithms: ['ES256'], ...o }), { logger: silentLogger, now: clock.now });
  assert.ok(a);
  made.push(a);
  await a.ready();
  return a;
}
const tokenWith = (claims: Record<string, unknown>): Promise<string> =>
  sign({ sub: 'oidc-user', jti: randomUUID(), exp: epochSeconds(clock.now()) + 600, ...claims }, key);

describe('OIDC discovery', () => {
  it('uses the discovered jwks_uri and checks the discovered issuer', async () => {
    server.setDiscovery({ issuer: `${server.url}/`, jwks_uri: other.jwksUrl });
    const d0 = server.discoveryFetches();
    const o0 = other.fetches();
    const a = await make({ oidcIssuer: server.url });
    assert.equal(server.discoveryFetches() - d0, 1);
    assert.equal(other.fetches() - o0, 1, 'keys come from the discovered jwks_uri');
    assert.equal(codeOf(await a.authenticate(await tokenWith({ iss: `${server.url}/` }), clock.now())), 'identified');
    assert.equal(codeOf(await a.authenticate(await tokenWith({ iss: 'https://issuer.example' }), clock.now())), 'auth.invalid_issuer');
    assert.equal(codeOf(await a.authenticate(await tokenWith({}), clock.now())), 'auth.invalid_issuer');
  });

  it('a discovery document naming another issuer is refused (OIDC Discovery §4.3)', async () => {
    server.setDiscovery({ issuer: 'https://attacker.example', jwks_uri: other.jwksUrl });
    const a = await make({ oidcIssuer: server.url });
    assert.equal(a.stats().jwksFetchFailures, 1);
    assert.equal(codeOf(await a.authenticate(await tokenWith({ iss: 'https://attacker.example' }), clock.now())), 'auth.key_unavailable');
  });

  it('an explicit issuer overrides the discovered one', async () => {
    const a = await make({ oidcIssuer: `${server.url}/`, issuer: 'https://explicit.example' });
    assert.equal(codeOf(await a.authenticate(await tokenWith({ iss: 'https://explicit.example' }), clock.now())), 'identified');
    assert.equal(codeOf(await a.authenticate(await tokenWith({ iss: server.url }), clock.now())), 'auth.invalid_issuer');
  });

  it('discovery failure is retried later, never a crash', async () => {
    server.setDown('status');
    const a = await make({ oidcIssuer: server.url });
    assert.equal(a.primed(), true);
    assert.equal(a.stats().jwksFetchFailures, 1);
    assert.equal(codeOf(await a.authenticate(await tokenWith({ iss: server.url }), clock.now())), 'auth.key_unavailable');
    server.setDown(false);
    clock.advance(5_000);
    assert.equal(codeOf(await a.authenticate(await tokenWith({ iss: server.url }), clock.now())), 'identified');
  });

  it('a discovery document without jwks_uri is a failure', async () => {
    server.setDiscovery({ issuer: server.url });
    const a = await make({ oidcIssuer: server.url });
    assert.equal(a.stats().jwksFetchFailures, 1);
    assert.equal(codeOf(await a.authenticate(await tokenWith({ iss: server.url }), clock.now())), 'auth.key_unavailable');
  });

  it('with an explicit JWKS URL, discovery only supplies the issuer', async () => {
    server.setDiscovery({ issuer: server.url, jwks_uri: 'https://unreachable.invalid/jwks' });
    const a = await make({ oidcIssuer: server.url, jwksUrl: other.jwksUrl });
    assert.equal(codeOf(await a.authenticate(await tokenWith({ iss: server.url }), clock.now())), 'identified');
  });

  it('with explicit JWKS URL and issuer, no discovery request is made', async () => {
    const d0 = server.discoveryFetches();
    const a = await make({ oidcIssuer: server.url, jwksUrl: other.jwksUrl, issuer: 'https://explicit.example' });
    assert.equal(server.discoveryFetches() - d0, 0);
    assert.equal(codeOf(await a.authenticate(await tokenWith({ iss: 'https://explicit.example' }), clock.now())), 'identified');
  });
});
