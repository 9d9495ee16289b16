/**
 * Algorithm families and their keys: each family accepted only with its own key kind, the
 * allow-list, alg confusion attacks, and malformed input that must never throw.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { base64url } from 'jose';
import { createJwtAuthenticator, type JwtAuthenticator } from '../src/authn/jwt';
import type { AuthnResult } from '../src/authn/types';
import { codeOf, epochSeconds, jwksOf, type JwksServer, jwtOptions, makeKey, manualClock, sign, silentLogger, startJwksServer, type TestKey } from './helpers/jwks-server';

const SECRET = 'an-hmac-secret-of-sixty-four-bytes-for-hs512-0123456789abcdefghij';
const ALL = ['HS256', 'HS384', 'HS512', 'RS256', 'PS256', 'ES256', 'EdDSA'];
const clock = manualClock();
const claims = (): Record<string, unknown> => ({ sub: 'alice', exp: epochSeconds(clock.now()) + 300 });


describe('algorithm families', () => {
  let server: JwksServer;
  const keys: Record<string, TestKey> = {};
  const made: JwtAuthenticator[] = [];
  const make = (o: Parameters<typeof jwtOptions>[0]): JwtAuthenticator => {
    const a = createJwtAuthenticator(jwtOptions(o), { logger: silentLogger, now: clock.now });
    assert.ok(a);
    made.push(a);
    return a;
  };

  before(async () => {
    for (const alg of ['RS256', 'PS256', 'ES256', 'EdDSA']) keys[alg] = await makeKey(alg, `kid-${alg}`);
    server = await startJwksServer(jwksOf(...Object.values(keys)));
  });
  after(async () => {
    for (const a of made) a.close();
    await server.close();
  });

  for (const alg of ['HS256', 'HS384', 'HS512']) {
    it(`${alg} accepted with the secret`, async () => {
      const authn = make({ secret: SECRET, allowedAlgorithms: ALL });
      const token = await sign(claims(), { alg, secret: SECRET });
      assert.equal(codeOf(await authn.authenticate(token, clock.now())), 'identified');
    });
    it(`${alg} with a different secret is invalid_token`, async () => {
      const authn = make({ secret: SECRET, allowedAlgorithms: ALL });
      const token = await sign(claims(), { alg, secret: `${SECRET}-other` });
      assert.equal(codeOf(await authn.authenticate(token, clock.now())), 'auth.invalid_token');
    });
  }

  for (const alg of ['RS256', 'PS256', 'ES256', 'EdDSA']) {
    it(`${alg} accepted with a static JWKS key`, async () => {
      const authn = make({ staticJwks: jwksOf(keys[alg]!), allowedAlgorithms: ALL });
      const token = await sign(claims(), keys[alg]!);
      assert.equal(codeOf(await authn.authenticate(token, clock.now())), 'identified');
    });
    it(`${alg} accepted with a remote JWKS key`, async () => {
      const authn = make({ jwksUrl: server.jwksUrl, allowedAlgorithms: ALL });
      const token = await sign(claims(), keys[alg]!);
      assert.equal(codeOf(await authn.authenticate(token, clock.now())), 'identified');
    });
    it(`${alg} signed by another key with the same kid is invalid_token`, async () => {
      const authn = make({ staticJwks: jwksOf(keys[alg]!), allowedAlgorithms: ALL });
      const impostor = await makeKey(alg, keys[alg]!.kid);
      const token = await sign(claims(), impostor);
      assert.equal(codeOf(await authn.authenticate(token, clock.now())), 'auth.invalid_token');
    });
  }

  it('a kid-less token is verified against the matching keys of the set', async () => {
    const second = await makeKey('RS256', 'kid-second');
    const authn = make({ staticJwks: jwksOf(keys['RS256']!, second), allowedAlgorithms: ALL });
    const token = await sign(claims(), second, { kid: undefined });
    assert.equal(codeOf(await authn.authenticate(token, clock.now())), 'identified');
  });

  it('an alg outside allowedAlgorithms is unsupported_algorithm, for every family', async () => {
    const authn = make({ secret: SECRET, staticJwks: jwksOf(...Object.values(keys)), allowedAlgorithms: ['ES256'] });
    for (const alg of ['RS256', 'PS256', 'EdDSA']) {
      assert.equal(codeOf(await authn.authenticate(await sign(claims(), keys[alg]!), clock.now())), 'auth.unsupported_algorithm', alg);
    }
    for (const alg of ['HS256', 'HS512']) {
      assert.equal(codeOf(await authn.authenticate(await sign(claims(), { alg, secret: SECRET }), clock.now())), 'auth.unsupported_algorithm', alg);
    }
    assert.equal(codeOf(await authn.authenticate(await sign(claims(), keys['ES256']!), clock.now())), 'identified');
  });

  it('an allowed alg with no key of its kind is unsupported_algorithm', async () => {
    const hmacOnly = make({ secret: SECRET, allowedAlgorithms: ALL });
    assert.equal(codeOf(await hmacOnly.authenticate(await sign(claims(), keys['RS256']!), clock.now())), 'auth.unsupported_algorithm');
    const jwksOnly = make({ staticJwks: jwksOf(keys['RS256']!), allowedAlgorithms: ALL });
    assert.equal(
      codeOf(await jwksOnly.authenticate(await sign(claims(), { alg: 'HS256', secret: SECRET }), clock.now())),
      'auth.unsupported_algorithm',
    );
  });

  it('alg none is never accepted, even when listed', async () => {
    const authn = make({ secret: SECRET, allowedAlgorithms: ['none', 'HS256'] });
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const body = base64url.encode(JSON.stringify(claims()));
    for (const token of [`${header}.${body}.`, `${header}.${body}.AAAA`]) {
      assert.equal(codeOf(await authn.authenticate(token, clock.now())), 'auth.unsupported_algorithm');
    }
  });

  it('HS256 signed with the RSA public key PEM as secret is refused', async () => {
    const rsa = keys['RS256']!;
    const forged = (secret: string): Promise<string> => sign(claims(), { alg: 'HS256', secret }, { kid: rsa.kid });
    // With a JWKS holding that RSA key and an unrelated secret: the JWKS key is never an HMAC key.
    const both = make({ secret: SECRET, staticJwks: jwksOf(rsa), allowedAlgorithms: ALL });
    assert.equal(codeOf(await both.authenticate(await forged(rsa.publicPem), clock.now())), 'auth.invalid_token');
    // With JWKS only: HS256 has no key at all.
    const jwksOnly = make({ jwksUrl: server.jwksUrl, allowedAlgorithms: ALL });
    assert.equal(codeOf(await jwksOnly.authenticate(await forged(rsa.publicPem), clock.now())), 'auth.unsupported_algorithm');
    // The JWK form of the key as secret, too.
    assert.equal(codeOf(await both.authenticate(await forged(JSON.stringify(rsa.publicJwk)), clock.now())), 'auth.invalid_token');
  });

  it('a key embedded in the header (jwk) is ignored', async () => {
    const attacker = await makeKey('RS256', 'kid-RS256');
    const authn = make({ staticJwks: jwksOf(keys['RS256']!), allowedAlgorithms: ALL });
    const token = await sign(claims(), attacker, { header: { jwk: attacker.publicJwk, jku: `${server.url}/evil` } });
    assert.equal(codeOf(await authn.authenticate(token, clock.now())), 'auth.invalid_token');
  });

  it('an RSA key shorter than 2048 bits in the key set is refused', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'short', alg: 'RS256' };
    const authn = make({ staticJwks: { keys: [jwk] }, allowedAlgorithms: ALL });
    const { createSign } = await import('node:crypto');
    const header = base64url.encode(JSON.stringify({ alg: 'RS256', kid: 'short' }));
    const body = base64url.encode(JSON.stringify(claims()));
    const sig = createSign('RSA-SHA256').update(`${header}.${body}`).sign(privateKey);
    const token = `${header}.${body}.${base64url.encode(sig)}`;
    assert.equal(codeOf(await authn.authenticate(token, clock.now())), 'auth.invalid_token');
  });
});

describe('malformed and hostile tokens never throw', () => {
  const authn = createJwtAuthenticator(jwtOptions({ secret: SECRET }), { logger: silentLogger, now: clock.now })!;
  after(() => authn.close());

  async function check(token: string, expected: string): Promise<void> {
    let result: AuthnResult;
    try {
      result = await authn.authenticate(token, clock.now());
    } catch (err) {
      assert.fail(`authenticate threw: ${String(err)}`);
    }
    assert.equal(codeOf(result), expected, token.slice(0, 80));
  }

  it('not JWT-shaped → skip (service tokens, opaque strings)', async () => {
    for (const t of ['', 'abc', 'a.b', 'a.b.c.d', 'orcheo_svc_abcdef', 'a..c', 'a b.c.d', 'é.b.c']) await check(t, 'skip');
  });

  it('tampered payload', async () => {
    const token = await sign(claims(), { alg: 'HS256', secret: SECRET });
    const [h, , s] = token.split('.');
    const evil = base64url.encode(JSON.stringify({ ...claims(), sub: 'admin' }));
    await check(`${h}.${evil}.${s}`, 'auth.invalid_token');
  });

  it('tampered signature', async () => {
    const token = await sign(claims(), { alg: 'HS256', secret: SECRET });
    const last = token.at(-2) === 'A' ? 'B' : 'A';
    await check(`${token.slice(0, -2)}${last}${token.at(-1)}`, 'auth.invalid_token');
    await check(`${token.split('.').slice(0, 2).join('.')}.`, 'auth.invalid_token');
  });

  it('truncated token', async () => {
    const token = await sign(claims(), { alg: 'HS256', secret: SECRET });
    await check(token.slice(0, token.length - 10), 'auth.invalid_token');
    await check(token.slice(0, token.lastIndexOf('.') + 1), 'auth.invalid_token');
  });

  it('1 MB token', async () => {
    const big = `${'a'.repeat(500_000)}.${'b'.repeat(500_000)}.${'c'.repeat(100)}`;
    await check(big, 'auth.invalid_token');
    const token = await sign({ ...claims(), pad: 'x'.repeat(1_000_000) }, { alg: 'HS256', secret: SECRET });
    await check(token, 'auth.invalid_token');
  });

  it('garbage header and payload segments', async () => {
    const enc = (v: unknown): string => base64url.encode(typeof v === 'string' ? v : JSON.stringify(v));
    const good = await sign(claims(), { alg: 'HS256', secret: SECRET });
    const sig = good.split('.')[2];
    await check(`${enc('not json')}.${enc(claims())}.${sig}`, 'auth.invalid_token');
    await check(`${enc([1, 2])}.${enc(claims())}.${sig}`, 'auth.invalid_token');
    await check(`${enc({ alg: 7 })}.${enc(claims())}.${sig}`, 'auth.unsupported_algorithm');
    await check(`${enc({ alg: 'HS256', kid: { x: 1 } })}.${enc(claims())}.${sig}`, 'auth.invalid_token');
    await check(`${enc({ alg: 'HS256', crit: ['zip'] })}.${enc(claims())}.${sig}`, 'auth.invalid_token');
    await check(`${enc({ alg: 'HS256', b64: false, crit: ['b64'] })}.${enc(claims())}.${sig}`, 'auth.invalid_token');
    const headerOnly = good.split('.')[0];
    await check(`${headerOnly}.${enc('[]')}.${sig}`, 'auth.invalid_token');
  });

  it('payload that is valid JSON but not an object, signed correctly', async () => {
    const { createHmac } = await import('node:crypto');
    const h = base64url.encode(JSON.stringify({ alg: 'HS256' }));
    for (const p of ['[1,2]', '"str"', 'null', '{"sub":"x","exp":"tomorrow"}', '{"sub":"x","nbf":{}}']) {
      const body = base64url.encode(p);
      const sig = createHmac('sha256', SECRET).update(`${h}.${body}`).digest('base64url');
      await check(`${h}.${body}.${sig}`, 'auth.invalid_token');
    }
  });
});
