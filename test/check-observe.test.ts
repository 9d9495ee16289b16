/**
 * Observers run after the decision and never change it; public routes identify offline (no JWKS
 * fetch for an unknown kid). Both through a real gRPC server on loopback.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { createBootstrapAuthenticator } from '../src/authn/bootstrap';
import { createAuthenticatorChain } from '../src/authn/chain';
import { BUILTIN_POLICY } from '../src/authz/builtin';
import { startGrpcServer } from '../src/grpc/server';
import { createCheckPipeline } from '../src/pipeline/check';
import { createJwtAuthenticator } from '../src/authn/jwt';
import { COOLDOWN_MS } from '../src/authn/jwt/remote';
import { AuthzClient, deniedBody, deniedStatus } from './helpers/grpc-client';
import { epochSeconds, jwksOf, jwtOptions, makeKey, manualClock, sign, silentLogger, startJwksServer } from './helpers/jwks-server';

const BOOT = 'bootstrap-secret-for-observer-tests-012345';

test('an observer that throws leaves allows as allows and denies as denies, never INTERNAL', async () => {
  const logs: string[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void logs.push(s) });
  let calls = 0;
  const s = await serve({
    mode: () => 'required',
    authenticator: createAuthenticatorChain([createBootstrapAuthenticator({ token: BOOT, scopes: ['workflows:read'] })]),
    policy: () => BUILTIN_POLICY,
    limits: { ip: 0, identity: 0, xffTrustedHops: 0 },
    logger,
    observe: () => {
      calls += 1;
      throw new Error('metrics defect');
    },
  });
  const { client } = s;
  try {
    const allowed = await client.check({ headers: { authorization: `Bearer ${BOOT}` } });
    assert.ok(allowed.ok_response, `still an allow, got ${allowed.denied_response?.body}`);
    const denied = await client.check({ headers: { authorization: 'Bearer wrong' } });
    assert.equal(deniedStatus(denied), 401);
    assert.equal(deniedBody(denied).code, 'auth.invalid_token', 'the deny keeps its own code, not a 503');
    assert.equal(calls, 2, 'the observer was called for each decision');
    assert.ok(logs.some((l) => l.includes('check observer failed')), 'the defect is logged');
  } finally {
    await s.close();
  }
});

/** The pipeline behind a real gRPC server, for tests that inject a dependency (observer, clock). */
async function serve(deps: Parameters<typeof createCheckPipeline>[0]): Promise<{ client: AuthzClient; close(): Promise<void> }> {
  const server = await startGrpcServer({ host: '127.0.0.1', port: 0, check: createCheckPipeline(deps), logger: deps.logger });
  server.setServing(true);
  const client = new AuthzClient(server.port);
  return { client, close: async () => (client.close(), await server.shutdown(500)) };
}

test('public route + JWT with an unknown kid: no JWKS fetch, while a required route does fetch', async () => {
  const known = await makeKey('RS256', 'known');
  const stranger = await makeKey('RS256', 'stranger');
  const jwks = await startJwksServer(jwksOf(known));
  const clock = manualClock();
  const jwt = createJwtAuthenticator(jwtOptions({ jwksUrl: jwks.jwksUrl }), { logger: silentLogger, now: clock.now })!;
  const s = await serve({ mode: () => 'required', authenticator: createAuthenticatorChain([jwt]), policy: () => BUILTIN_POLICY, limits: { ip: 0, identity: 0, xffTrustedHops: 0 }, logger: silentLogger, now: clock.now });
  try {
    await jwt.ready();
    clock.advance(COOLDOWN_MS + 1000); // past the start-up fetch's cooldown: an unknown kid may refetch now
    const exp = epochSeconds(clock.now()) + 600;
    const token = await sign({ sub: 'u1', exp, iat: exp - 600 }, stranger);
    const before = jwks.fetches();
    const pub = await s.client.check({ path: '/healthz', contextExtensions: { auth: 'public' }, headers: { authorization: `Bearer ${token}` } });
    assert.ok(pub.ok_response, 'public route allowed');
    assert.equal(jwks.fetches(), before, 'a public route never waits on the key provider');
    await s.client.check({ headers: { authorization: `Bearer ${token}` } });
    assert.equal(jwks.fetches(), before + 1, 'control: the same unknown kid on a required route does refetch');
  } finally {
    await s.close();
    jwt.close();
    await jwks.close();
  }
});
