/**
 * Property-based fuzzing of the Check service through the real gRPC client: random CheckRequests
 * (headers in both forms, authorization values, tokens real and near-real, JWT-shaped strings,
 * WebSocket credentials, paths, methods, context_extensions, missing fields) and random bytes as the
 * message body. CI-sized by default (300 cases each); FUZZ_RUNS=<n> for a longer run, FUZZ_SEED to
 * replay a failure.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { AUTHZ_V3 } from '../src/grpc/descriptors';
import { insertToken } from '../src/store/tokens';
import { startTestApp, type TestApp } from './helpers/app';
import { readRequest } from './helpers/check-oracle';
import { b64url, requests, type Generated, type Secrets } from './helpers/check-requests';
import { checkRequest, deniedBody, deniedHeaders, deniedStatus, okHeaders, type CheckResult } from './helpers/grpc-client';
import { decodeCheckResponse, encodeCheckRequest } from './helpers/check-codec';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const BOOT = 'bootstrap-secret-for-fuzzing-0123456789';
const JWT_SECRET = 'fuzz-jwt-secret-0123456789abcdef0123456789abcdef';

/** The contract's deny codes with their HTTP and gRPC statuses (from the contract, not from src). */
const CONTRACT: Record<string, { http: number; grpc: number }> = {
  'auth.missing_token': { http: 401, grpc: 16 },
  'auth.invalid_scheme': { http: 401, grpc: 16 },
  'auth.invalid_token': { http: 401, grpc: 16 },
  'auth.unsupported_algorithm': { http: 401, grpc: 16 },
  'auth.token_expired': { http: 401, grpc: 16 },
  'auth.token_revoked': { http: 401, grpc: 16 },
  'auth.invalid_audience': { http: 401, grpc: 16 },
  'auth.invalid_issuer': { http: 401, grpc: 16 },
  'auth.missing_scope': { http: 403, grpc: 7 },
  'auth.workspace_forbidden': { http: 403, grpc: 7 },
  'auth.rate_limited.ip': { http: 429, grpc: 8 },
  'auth.rate_limited.identity': { http: 429, grpc: 8 },
  'auth.invalid_request': { http: 400, grpc: 3 },
  'auth.key_unavailable': { http: 503, grpc: 14 },
  'auth.backend_unavailable': { http: 503, grpc: 14 },
};

/** Identities a valid credential maps to, and the scopes/workspaces each holds. */
const IDENTITIES: Record<string, { scopes: string[]; workspaces: string[] }> = {
  bootstrap: { scopes: ['*'], workspaces: ['*'] },
  svc: { scopes: ['workflows:read'], workspaces: ['ws-a'] },
  'fuzz-user': { scopes: ['workflows:read', 'workflows:write'], workspaces: ['ws-a'] },
};

// ---------------------------------------------------------------- invariants

interface Tally {
  allow: number;
  anonymous: number;
  deny: Record<string, number>;
}

function checkInvariants(g: Generated, r: CheckResult, s: Secrets, tally: Tally): void {
  const secrets = [BOOT, s.svc, s.jwt];
  assert.ok(r && typeof r === 'object' && r.status, 'a CheckResponse with a status');
  assert.ok(Boolean(r.ok_response) !== Boolean(r.denied_response), 'exactly one of ok_response / denied_response');
  assert.ok(r.dynamic_metadata?.fields, 'dynamic_metadata');
  // The oracle's view of the request: an independent reading from the contract (helpers/check-oracle.ts).
  const seen = readRequest(g.sent);
  if (seen.mustRefuse) {
    assert.equal(deniedBody(r).code, 'auth.invalid_request', `a path the policy cannot read unambiguously: ${g.sent.path}`);
    tally.deny['auth.invalid_request'] = (tally.deny['auth.invalid_request'] ?? 0) + 1;
    return;
  }

  if (r.ok_response) {
    assert.equal(r.status.code, 0);
    tally.allow += 1;
    const set = okHeaders(r);
    for (const h of r.ok_response.headers ?? []) assert.equal(h.append?.value, false, `${h.header.key} must overwrite`);
    const removed = new Set(r.ok_response.headers_to_remove ?? []);
    for (const [name] of g.sent.headers) {
      const n = name.toLowerCase();
      if (n.startsWith('x-orcheo-')) assert.ok(n in set || removed.has(n), `client header ${name} would reach the upstream`);
    }
    if (set['x-orcheo-authenticated'] === 'true') {
      const subject = set['x-orcheo-subject']!;
      const who = IDENTITIES[subject];
      assert.ok(who, `allowed as unknown subject ${subject}`);
      const credential = subject === 'bootstrap' ? BOOT : subject === 'svc' ? s.svc : s.jwt;
      assert.ok(seen.credentials.includes(credential), `allowed as ${subject} without presenting its credential`);
      if (!seen.preflight) {
        for (const q of seen.requirements) {
          if (q.auth === 'public') continue;
          for (const scope of q.scopes) assert.ok(who.scopes.includes('*') || who.scopes.includes(scope), `${subject} allowed without ${scope} (${seen.method} ${g.sent.path})`);
          if (q.workspace !== undefined) assert.ok(who.workspaces.includes('*') || who.workspaces.includes(q.workspace), `${subject} allowed into ${q.workspace}`);
        }
      }
    } else {
      assert.equal(set['x-orcheo-authenticated'], 'false');
      assert.equal(set['x-orcheo-identity-type'], 'anonymous');
      assert.equal(set['x-orcheo-subject'], undefined, 'no subject for an anonymous allow');
      tally.anonymous += 1;
      const legit = seen.preflight || seen.requirements.every((q) => q.auth === 'public' || (q.auth === 'optional' && seen.noCredential));
      assert.ok(legit, `anonymous allow on a ${seen.requirements.map((q) => q.auth).join('/')} route (method ${seen.method}, path ${g.sent.path}, credential ${seen.noCredential ? 'none' : 'presented'})`);
    }
  } else {
    const status = deniedStatus(r);
    const body = deniedBody(r);
    const code = body.code as string;
    assert.ok(code in CONTRACT, `deny code ${code} is not in the contract`);
    tally.deny[code] = (tally.deny[code] ?? 0) + 1;
    assert.equal(status, CONTRACT[code]!.http, `HTTP status of ${code}`);
    assert.equal(r.status.code, CONTRACT[code]!.grpc, `gRPC status of ${code}`);
    assert.equal(r.status.message, code);
    assert.equal(typeof body.message, 'string');
    assert.ok(body.message.length > 0);
    const h = deniedHeaders(r);
    assert.equal(h['content-type'], 'application/json');
    if (status === 401) assert.match(h['www-authenticate'] ?? '', /^Bearer/);
    if (status === 429 || status === 503) assert.ok(Number(h['retry-after']) >= 1, 'retry-after');
    for (const secret of secrets) assert.ok(!r.denied_response!.body.includes(secret), 'a deny body echoes a credential');
    for (const presented of seen.credentials) if (presented.length >= 12) assert.ok(!r.denied_response!.body.includes(presented), 'a deny body echoes the presented token');
  }
}

// ---------------------------------------------------------------- tests

describe('fuzzing Check through the gRPC client', () => {
  let t: TestApp;
  const s = { boot: BOOT } as Secrets;

  before(async () => {
    t = await startTestApp(
      {
        ORCHEO_AUTH_MODE: 'required',
        ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT,
        ORCHEO_AUTH_JWT_SECRET: JWT_SECRET,
        ORCHEO_AUTH_RATE_LIMIT_IP: '100',
        ORCHEO_AUTH_RATE_LIMIT_IDENTITY: '50',
        ORCHEO_AUTH_XFF_TRUSTED_HOPS: '1',
      },
      'auto',
    );
    const { record, secret } = await insertToken(t.app.db, { id: 'svc', scopes: IDENTITIES.svc!.scopes, workspaces: IDENTITIES.svc!.workspaces });
    t.app.index.apply(record);
    s.svc = secret;
    const key = new TextEncoder().encode(JWT_SECRET);
    const claims = { sub: 'fuzz-user', scope: IDENTITIES['fuzz-user']!.scopes.join(' '), workspace_ids: IDENTITIES['fuzz-user']!.workspaces };
    s.jwt = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuedAt().setExpirationTime('1h').sign(key);
    s.expiredJwt = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt(0).setExpirationTime(60).sign(key);
    s.wrongKeyJwt = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode('another-secret-0123456789abcdef0123456789'));
    s.noneJwt = `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${s.jwt.split('.')[1]}.`;
  });
  after(async () => {
    await t?.stop();
  });

  test(`random CheckRequests (${RUNS} runs): well-formed answer, deny unless the credentials are valid, no x-orcheo-* header reaches the upstream, contract deny bodies`, async (tc) => {
    const tally: Tally = { allow: 0, anonymous: 0, deny: {} };
    await fc.assert(
      fc.asyncProperty(requests(s), async (g) => {
        let r: CheckResult;
        try {
          r = await t.client.raw(g.req);
        } catch (err) {
          throw new Error(`gRPC error for a CheckRequest: ${(err as Error).message}`);
        }
        checkInvariants(g, r, s, tally);
      }),
      { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }), endOnFailure: true },
    );
    tc.diagnostic(`allows ${tally.allow} (anonymous ${tally.anonymous}); denies ${JSON.stringify(tally.deny)}`);
    assert.ok(tally.allow - tally.anonymous >= RUNS / 30, `only ${tally.allow - tally.anonymous} authenticated allows: the generator must exercise valid credentials`);
    assert.ok(Object.keys(tally.deny).length >= 4, 'several deny codes exercised');
    // No credential in the service's log lines (debug level, so every decision is logged).
    const logs = t.logs.join('');
    for (const secret of [BOOT, s.svc, s.jwt]) assert.ok(!logs.includes(secret), 'a credential reached the logs');
  });

  test('the invariants can fail: a spoofed header passed through, an anonymous allow on a required route, a non-contract deny', () => {
    const sent = (path: string, headers: Array<[string, string]>, method = 'GET'): Generated => ({ req: {}, sent: { method, path, headers, contextExtensions: undefined } });
    const g = sent('/api/credentials', [['x-orcheo-subject', 'admin']]);
    const tally: Tally = { allow: 0, anonymous: 0, deny: {} };
    const allow = (extra: Partial<NonNullable<CheckResult['ok_response']>>): CheckResult => ({
      status: { code: 0 },
      ok_response: { headers: [{ header: { key: 'x-orcheo-authenticated', value: 'false' }, append: { value: false } }, { header: { key: 'x-orcheo-identity-type', value: 'anonymous' }, append: { value: false } }], headers_to_remove: [], ...extra },
      dynamic_metadata: { fields: {} },
    });
    assert.throws(() => checkInvariants(g, allow({}), s, tally), /would reach the upstream/);
    assert.throws(() => checkInvariants(g, allow({ headers_to_remove: ['x-orcheo-subject'] }), s, tally), /anonymous allow on a required route/);
    const as = (subject: string): CheckResult =>
      allow({ headers: [{ header: { key: 'x-orcheo-authenticated', value: 'true' }, append: { value: false } }, { header: { key: 'x-orcheo-subject', value: subject }, append: { value: false } }] });
    // An identity whose credential was not presented, or only as a near miss.
    assert.throws(() => checkInvariants(sent('/api/ping', [['authorization', `Bearer ${s.svc}`]]), as('bootstrap'), s, tally), /without presenting its credential/);
    assert.throws(() => checkInvariants(sent('/api/ping', [['authorization', `Bearer ${BOOT}x`]]), as('bootstrap'), s, tally), /without presenting its credential/);
    // A WebSocket credential on a request that is not an upgrade is no credential.
    assert.throws(() => checkInvariants(sent('/api/ping', [['sec-websocket-protocol', `bearer.${BOOT}`]]), as('bootstrap'), s, tally), /without presenting its credential/);
    assert.doesNotThrow(() => checkInvariants(sent('/api/ping', [['upgrade', 'websocket'], ['sec-websocket-protocol', `chat, bearer.${BOOT}`]]), as('bootstrap'), s, tally));
    // Query credentials: access_token before token, and one with no value presents nothing.
    const ws: Array<[string, string]> = [['upgrade', 'websocket']];
    assert.doesNotThrow(() => checkInvariants(sent(`/api/ping?access_token=&token=${BOOT}`, ws), as('bootstrap'), s, tally));
    assert.doesNotThrow(() => checkInvariants(sent(`/api/ping?access_token&token=${BOOT}`, ws), as('bootstrap'), s, tally));
    assert.throws(() => checkInvariants(sent(`/api/ping?access_token=${BOOT}x&token=${BOOT}`, ws), as('bootstrap'), s, tally), /without presenting its credential/);
    // Scopes and workspaces from the oracle's own policy reading, dot segments resolved first.
    assert.throws(() => checkInvariants(sent('/api/workflows/x', [['authorization', `Bearer ${s.svc}`]], 'POST'), as('svc'), s, tally), /svc allowed without workflows:write/);
    assert.throws(() => checkInvariants(sent('/api/x/../credentials', [['authorization', `Bearer ${s.svc}`]]), as('svc'), s, tally), /svc allowed without vault:read/);
    assert.throws(() => checkInvariants(sent('/api/workspaces/ws-b/items', [['authorization', `Bearer ${s.svc}`]]), as('svc'), s, tally), /svc allowed into ws-b/);
    assert.doesNotThrow(() => checkInvariants(sent('/api/workflows/x;v=1/runs/..', [['authorization', `Bearer ${s.svc}`]]), as('svc'), s, tally));
    // A control character in the path must be refused as such.
    assert.throws(() => checkInvariants(sent('/api/%00x', [['authorization', `Bearer ${BOOT}`]]), as('bootstrap'), s, tally), /cannot read unambiguously/);
    const deny = (code: string, http: string): CheckResult => ({
      status: { code: 16, message: code },
      denied_response: { status: { code: http }, headers: [{ header: { key: 'content-type', value: 'application/json' } }], body: JSON.stringify({ message: 'x', code }) },
      dynamic_metadata: { fields: {} },
    });
    assert.throws(() => checkInvariants(g, deny('auth.whatever', 'Unauthorized'), s, tally), /not in the contract/);
    assert.throws(() => checkInvariants(g, deny('auth.invalid_token', 'Forbidden'), s, tally), /HTTP status/);
  });

  test('a message over the 4 MiB receive limit is refused with RESOURCE_EXHAUSTED; the server keeps answering', async () => {
    const big = checkRequest({ headers: { authorization: `Bearer ${BOOT}`, 'x-filler': 'x'.repeat(5 * 1024 * 1024) } });
    await assert.rejects(t.client.raw(big), (err: grpc.ServiceError) => err.code === grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(okHeaders(await t.client.check({ headers: { authorization: `Bearer ${BOOT}` } }))['x-orcheo-subject'], 'bootstrap');
  });

  test(`random bytes as the gRPC message (${RUNS} runs): an error or a valid CheckResponse, never a crash`, async (tc) => {
    const raw = new grpc.Client(`127.0.0.1:${t.app.grpcPort}`, grpc.credentials.createInsecure());
    tc.after(() => raw.close());
    const send = (bytes: Uint8Array): Promise<{ err: grpc.ServiceError | null; res?: Buffer }> =>
      new Promise((resolve) => {
        raw.makeUnaryRequest(`/${AUTHZ_V3}/Check`, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(bytes), { deadline: Date.now() + 5000 }, (err, res) => resolve({ err, res }));
      });
    const valid = encodeCheckRequest(checkRequest({ headers: { authorization: `Bearer ${BOOT}` } }));
    const outcomes: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 512 }),
          // A real request, corrupted: truncated, bytes flipped, garbage appended.
          fc.tuple(fc.nat({ max: valid.length }), fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.uint8Array({ maxLength: 32 })).map(([cut, flips, tail]) => {
            const b = Buffer.from(valid);
            for (const [i, v] of flips) b[i] = v;
            return Buffer.concat([b.subarray(0, cut), tail]);
          }),
        ),
        async (bytes) => {
          const { err, res } = await send(bytes);
          if (err) {
            // Undecodable input is refused by the gRPC layer as INTERNAL; anything else (UNAVAILABLE,
            // DEADLINE_EXCEEDED, UNKNOWN from a throwing handler) means Check misbehaved.
            assert.equal(err.code, grpc.status.INTERNAL, `unexpected gRPC error ${grpc.status[err.code]}: ${err.details}`);
            outcomes[grpc.status[err.code] ?? String(err.code)] = (outcomes[grpc.status[err.code] ?? String(err.code)] ?? 0) + 1;
          } else {
            const decoded = decodeCheckResponse(res!);
            assert.ok(decoded.status, 'a CheckResponse');
            outcomes[decoded.ok_response ? 'allow' : `deny ${decoded.status?.message}`] = (outcomes[decoded.ok_response ? 'allow' : `deny ${decoded.status?.message}`] ?? 0) + 1;
          }
        },
      ),
      { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }), endOnFailure: true },
    );
    tc.diagnostic(`outcomes: ${JSON.stringify(outcomes)}`);
    assert.equal(okHeaders(await t.client.check({ headers: { authorization: `Bearer ${BOOT}` } }))['x-orcheo-subject'], 'bootstrap', 'still serving');
  });
});
