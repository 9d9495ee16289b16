import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import type { Identity } from '../src/authn/types';
import type { KeySource } from '../src/assertion/key-source';
import { generatePrivatePem, importSigningKey, KeySet, publicJwkOf, type SigningKey } from '../src/assertion/keys';
import { AssertionSigner, KeyUnavailableError } from '../src/assertion/signer';

async function key(kid: string, signsFrom = 0): Promise<SigningKey> {
  const { pem, publicKey } = generatePrivatePem('ES256');
  return { kid, alg: 'ES256', privateKey: await importSigningKey(pem, 'ES256'), publicJwk: { ...(await publicJwkOf(publicKey, 'ES256')), kid }, signsFrom };
}

function identity(tokenId: string, expiresAt?: number): Identity {
  return { authenticated: true, type: 'service', subject: tokenId, tokenId, scopes: new Set(['workflows:read']), workspaces: new Set(['ws-1']), source: 'service_token', expiresAt };
}

/** A signer over a settable key set and an injected clock. */
function rig(keys: SigningKey[], maxEntries?: number) {
  let set = new KeySet(keys);
  const clock = { now: 1_800_000_000_000 };
  const source: KeySource = { kind: 'file', keys: () => set, start: async () => undefined, stop: () => undefined };
  const signer = new AssertionSigner({ source, issuer: 'orcheo-authz', ttlSeconds: 300, now: () => clock.now, maxEntries });
  return { signer, clock, setKeys: (k: SigningKey[]) => (set = new KeySet(k)) };
}

describe('assertion signer', () => {
  test('re-used until less than a tenth of its lifetime is left, then signed again', async () => {
    const { signer, clock } = rig([await key('k1')]);
    const id = identity('a');
    const first = await signer.assertion(id, 'aud');
    clock.now += 269_000; // 31 s of 300 left
    assert.equal(await signer.assertion(id, 'aud'), first);
    clock.now += 2_000; // 29 s left: under a tenth
    assert.equal(signer.cached(id, 'aud'), undefined);
    assert.notEqual(await signer.assertion(id, 'aud'), first);
    assert.equal(signer.signed, 2);
  });

  test('a new signing key never serves the previous key\'s assertion', async () => {
    const k1 = await key('k1');
    const k2 = await key('k2', 1_800_000_060_000);
    const { signer, clock } = rig([k1, k2]);
    const id = identity('a');
    const before = await signer.assertion(id, 'aud');
    assert.equal(decodeJwt(before).iat, 1_800_000_000);
    clock.now = k2.signsFrom;
    const after = await signer.assertion(id, 'aud');
    const jwks = createLocalJWKSet({ keys: [k1.publicJwk, k2.publicJwk] });
    assert.equal((await jwtVerify(after, jwks, { currentDate: new Date(clock.now) })).protectedHeader.kid, 'k2');
    assert.equal((await jwtVerify(before, jwks, { currentDate: new Date(clock.now) })).protectedHeader.kid, 'k1');
  });

  test('dropToken forgets exactly that credential, including the per-identity fast path', async () => {
    const { signer } = rig([await key('k1')]);
    const a = identity('a');
    const b = identity('b');
    await signer.assertion(a, 'x');
    await signer.assertion(a, 'y');
    await signer.assertion(b, 'x');
    signer.dropToken('a');
    assert.equal(signer.cachedFor('a'), 0);
    assert.equal(signer.cached(a, 'y'), undefined);
    assert.equal(signer.cached(a, 'x'), undefined);
    assert.ok(signer.cached(b, 'x'));
  });

  test('exp is capped at the credential expiry; the cache is bounded', async () => {
    const { signer, clock } = rig([await key('k1')], 2);
    const exp = decodeJwt(await signer.assertion(identity('short', clock.now + 42_500), 'aud')).exp;
    assert.equal(exp, Math.floor((clock.now + 42_500) / 1000));
    for (const aud of ['a', 'b', 'c']) await signer.assertion(identity('many'), aud);
    assert.equal(signer.size, 2);
  });

  test('no usable key: KeyUnavailableError, never an unsigned value', async () => {
    const { signer, setKeys } = rig([]);
    await assert.rejects(signer.assertion(identity('a'), 'aud'), KeyUnavailableError);
    setKeys([{ ...(await key('retired')), retireAfter: 1 }]);
    await assert.rejects(signer.assertion(identity('a'), 'aud'), KeyUnavailableError);
  });
});
