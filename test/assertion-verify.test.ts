import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { revokeToken } from '../src/store/tokens';
import { notifyTokenChange } from '../src/store/notify';
import type { StoreKeySource } from '../src/assertion/key-source';
import { startTestApp, type TestApp } from './helpers/app';
import { deniedBody, deniedStatus } from './helpers/grpc-client';
import { assertionOf, claimsOf, fetchJson, HEADER, HOST, jwksUrl, req, serviceToken, until } from './helpers/assertion';

describe('identity assertion on the gRPC interface', () => {
  let t: TestApp;
  let reader: string;
  before(async () => {
    t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_ASSERTION: 'true' }, 'auto');
    reader = await serviceToken(t.app, 'reader', { scopes: ['workflows:read', 'vault:read'], workspaces: ['ws-b', 'ws-a'] });
  });
  after(() => t?.stop());

  test('an authenticated allow carries a JWS that jose verifies against the running JWKS URL', async () => {
    const r = await t.client.check(req(reader));
    const jws = assertionOf(r);
    assert.ok(jws, 'no assertion header on the allow');
    assert.ok(!(r.ok_response?.headers_to_remove ?? []).includes(HEADER), 'the assertion header must not be removed again');
    const { payload, protectedHeader } = await jwtVerify(jws, createRemoteJWKSet(jwksUrl(t.app)), { issuer: 'orcheo-authz', audience: HOST });
    assert.equal(protectedHeader.alg, 'ES256');
    assert.equal(protectedHeader.typ, 'JWT');
    assert.ok(protectedHeader.kid);
    assert.equal(payload.sub, 'reader');
    assert.equal(typeof payload.jti, 'string');
    assert.equal(payload.exp! - payload.iat!, 300);
    assert.deepEqual(payload.orcheo, { identity_type: 'service', token_id: 'reader', scopes: ['vault:read', 'workflows:read'], workspace_ids: ['ws-a', 'ws-b'] });
  });

  test('the audience is the rule/context extension, then the request host', async () => {
    const hinted = assertionOf(await t.client.check(req(reader, {}, { assertion_audience: 'billing' })))!;
    assert.equal(claimsOf(hinted).aud, 'billing');
    const hosted = assertionOf(await t.client.check(req(reader, { ':authority': 'Other.Example' })))!;
    assert.equal(claimsOf(hosted).aud, 'other.example');
  });

  test('a forged client header is overwritten on an authenticated allow and removed on an anonymous one', async () => {
    const forged = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.';
    const r = await t.client.check(req(reader, { [HEADER]: forged }));
    assert.notEqual(assertionOf(r), forged);
    assert.equal(claimsOf(assertionOf(r)!).sub, 'reader');
    // Replayed: a genuine assertion presented by an anonymous caller on a public route.
    const genuine = assertionOf(r)!;
    const anon = await t.client.check(req(undefined, { [HEADER]: genuine }, { auth: 'public' }));
    assert.ok(anon.ok_response, 'public route should allow');
    assert.equal(assertionOf(anon), undefined, 'an anonymous allow carries no assertion');
    assert.ok(anon.ok_response.headers_to_remove?.includes(HEADER), 'the client copy must be removed');
    const bare = await t.client.check(req(undefined, {}, { auth: 'public' }));
    assert.equal(assertionOf(bare), undefined);
  });

  test('exp never passes the credential expiry', async () => {
    const expiresAt = Date.now() + 100_000;
    const short = await serviceToken(t.app, 'short-lived', { expiresAt });
    const c = claimsOf(assertionOf(await t.client.check(req(short)))!);
    assert.ok(c.exp <= Math.floor(expiresAt / 1000), `exp ${c.exp} is past the token's expiry ${expiresAt / 1000}`);
    assert.ok(c.exp - c.iat < 300);
  });

  test('an assertion is re-used for the same identity and audience, not across audiences', async () => {
    const a = assertionOf(await t.client.check(req(reader)))!;
    const signed = t.app.assertions!.signer.signed;
    const b = assertionOf(await t.client.check(req(reader)))!;
    assert.equal(b, a);
    assert.equal(t.app.assertions!.signer.signed, signed);
    const c = assertionOf(await t.client.check(req(reader, {}, { assertion_audience: 'elsewhere' })))!;
    assert.notEqual(c, a);
  });

  test('revoking the credential drops exactly its cached assertions at once', async () => {
    const victim = await serviceToken(t.app, 'victim');
    const other = await serviceToken(t.app, 'bystander');
    assert.ok(assertionOf(await t.client.check(req(victim))));
    assert.ok(assertionOf(await t.client.check(req(other))));
    const signer = t.app.assertions!.signer;
    assert.equal(signer.cachedFor('victim'), 1);
    await t.app.db.transaction(async (tx) => {
      const revoked = await revokeToken(tx, { id: 'victim', nowMs: Date.now() });
      await notifyTokenChange(tx, revoked.map((r) => r.id));
    });
    await until('the revocation to reach the index', () => t.app.index.get('victim')?.revokedAt !== undefined);
    assert.equal(signer.cachedFor('victim'), 0, 'cached assertions of a revoked credential must be dropped');
    assert.equal(signer.cachedFor('bystander'), 1, 'other credentials keep theirs');
    const denied = await t.client.check(req(victim));
    assert.equal(deniedBody(denied).code, 'auth.token_revoked');
  });

  test('JWKS and discovery are public, cacheable for less than the publish-ahead', async () => {
    const jwks = await fetchJson(jwksUrl(t.app));
    assert.equal(jwks.status, 200);
    const maxAge = Number(/max-age=(\d+)/.exec(jwks.headers.get('cache-control') ?? '')?.[1]);
    assert.ok(maxAge > 0 && maxAge < 60, `max-age ${maxAge}`);
    assert.ok(jwks.body.keys.every((k: Record<string, unknown>) => k.kid && !('d' in k)), 'JWKS must hold public keys only');
    const disco = await fetchJson(new URL('/.well-known/openid-configuration', jwksUrl(t.app)));
    assert.equal(disco.body.issuer, 'orcheo-authz');
    assert.equal(disco.body.jwks_uri, jwksUrl(t.app).href);
  });

  test('a store without keys answers 503 auth.key_unavailable, never an allow without the assertion', async () => {
    assert.ok(assertionOf(await t.client.check(req(reader))));
    await t.app.db.query(`UPDATE assertion_keys SET retire_after = clock_timestamp() - interval '1 second'`);
    await (t.app.assertions!.source as StoreKeySource).reload();
    const r = await t.client.check(req(reader));
    assert.equal(deniedStatus(r), 503);
    assert.equal(deniedBody(r).code, 'auth.key_unavailable');
  });
});
