import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify } from 'jose';
import { importSigningKey, KeySet } from '../src/assertion/keys';
import { loadKeyRows, rotateKey } from '../src/assertion/key-store';
import { startTestApp } from './helpers/app';
import { createTestSchema, PG_SKIP_REASON, pgReachable } from './helpers/pg';
import { runCli, tempHome } from './helpers/spawn';
import { assertionOf, fetchJson, HOST, jwksUrl, kidOf, req, serviceToken, until } from './helpers/assertion';

const TTL_MS = 300_000;

describe('assertion keys', async () => {
  const pg = await pgReachable();

  test('rotation publishes at once, switches signing at signs_from, retires after the last assertion expired (injected clock)', { skip: !pg && PG_SKIP_REASON }, async () => {
    const t = await startTestApp({ ORCHEO_AUTH_ASSERTION: 'true' });
    try {
      const [first] = await loadKeyRows(t.app.db);
      assert.ok(first, 'a first key is generated at start');
      const r = await rotateKey(t.app.db, { publishAheadMs: 60_000, ttlMs: TTL_MS });
      const rows = await loadKeyRows(t.app.db);
      const set = new KeySet(await Promise.all(rows.map(async (k) => ({ ...k, privateKey: await importSigningKey(k.privatePem, k.alg) }))));
      const old = rows.find((k) => k.kid === first.kid)!;
      assert.equal(set.signing(r.signsFrom - 1)?.kid, first.kid, 'before signs_from the old key signs');
      assert.deepEqual(set.published(r.signsFrom - 1).map((k) => k.kid).sort(), [first.kid, r.kid].sort(), 'the new key is published ahead');
      assert.equal(set.signing(r.signsFrom)?.kid, r.kid, 'from signs_from the new key signs');
      assert.ok(old.retireAfter! >= r.signsFrom + TTL_MS, 'the old key outlives its last assertion');
      assert.ok(set.published(old.retireAfter! - 1).some((k) => k.kid === first.kid));
      assert.ok(!set.published(old.retireAfter! + 1).some((k) => k.kid === first.kid), 'then it is retired');
    } finally {
      await t.stop();
    }
  });

  test('two replicas on one schema share and publish each other\'s keys; a CLI rotation reaches both', { skip: !pg && PG_SKIP_REASON }, async () => {
    const schema = await createTestSchema('asr');
    const home = tempHome();
    const env = { ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_ASSERTION: 'true' };
    const a = await startTestApp(env, 'pg', schema);
    const b = await startTestApp(env, 'pg', schema);
    try {
      const secret = await serviceToken(a.app, 'shared');
      await b.app.index.resync();
      const fromA = assertionOf(await a.client.check(req(secret)))!;
      const fromB = assertionOf(await b.client.check(req(secret)))!;
      assert.equal(kidOf(fromA), kidOf(fromB), 'one key for every replica');
      // Each replica's JWKS verifies what the other signed.
      await jwtVerify(fromA, createRemoteJWKSet(jwksUrl(b.app)), { issuer: 'orcheo-authz', audience: HOST });
      await jwtVerify(fromB, createRemoteJWKSet(jwksUrl(a.app)), { issuer: 'orcheo-authz', audience: HOST });

      const cli = await runCli(['assertion-key', 'rotate', '--publish-ahead', '60', '--json'], { ORCHEO_AUTH_DATABASE_URL: schema.url }, { home: home.dir });
      assert.equal(cli.code, 0, cli.stderr);
      const out = JSON.parse(cli.stdout) as { kid: string; retiring: Array<{ kid: string }> };
      assert.deepEqual(out.retiring.map((k) => k.kid), [kidOf(fromA)]);
      for (const r of [a, b]) {
        await until(`replica to publish ${out.kid}`, async () => (await fetchJson(jwksUrl(r.app))).body.keys.some((k: { kid: string }) => k.kid === out.kid));
      }
      // Published ahead: still signing with the old key, whose assertions still verify.
      const later = assertionOf(await b.client.check(req(secret, {}, { assertion_audience: 'fresh' })))!;
      assert.equal(kidOf(later), kidOf(fromA));
      await jwtVerify(fromA, createRemoteJWKSet(jwksUrl(b.app)), { issuer: 'orcheo-authz', audience: HOST });

      const bad = await runCli(['assertion-key', 'rotate', '--publish-ahead', 'soon'], { ORCHEO_AUTH_DATABASE_URL: schema.url }, { home: home.dir });
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--publish-ahead must be a number of seconds/);
    } finally {
      await a.stop();
      await b.stop();
      await schema.drop();
      home.remove();
    }
  });

  test('after the publish-ahead delay new assertions use the new key; old ones still verify until they expire', { skip: !pg && PG_SKIP_REASON }, async () => {
    const t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_ASSERTION: 'true' });
    try {
      const secret = await serviceToken(t.app, 'svc');
      const before = assertionOf(await t.client.check(req(secret)))!;
      const jwks = JSON.stringify((await fetchJson(jwksUrl(t.app))).body);
      // A short publish-ahead instead of sleeping out 60 s; nothing below depends on its length.
      const r = await rotateKey(t.app.db, { publishAheadMs: 300, ttlMs: TTL_MS, alg: 'EdDSA' });
      const after = await until('the new key to sign', async () => {
        const jws = assertionOf(await t.client.check(req(secret)))!;
        return kidOf(jws) === r.kid ? jws : undefined;
      });
      const verified = await jwtVerify(after, createRemoteJWKSet(jwksUrl(t.app)), { issuer: 'orcheo-authz', audience: HOST });
      assert.equal(verified.protectedHeader.alg, 'EdDSA');
      await jwtVerify(before, createRemoteJWKSet(jwksUrl(t.app)), { issuer: 'orcheo-authz', audience: HOST });
      // The old assertion verifies against the key set an upstream cached before the rotation, too.
      await jwtVerify(before, createLocalJWKSet(JSON.parse(jwks)), { issuer: 'orcheo-authz', audience: HOST });
    } finally {
      await t.stop();
    }
  });

  test('the key file is re-read on change; the previous key stays published', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'assertion-key-'));
    const file = join(dir, 'key.pem');
    const pem = (type: 'ec' | 'ed25519') =>
      (type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519')).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const pems = [pem('ec'), pem('ed25519')];
    writeFileSync(file, pems[0]!);
    const header = 'x-identity-assertion';
    const t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_ASSERTION: 'true', ORCHEO_AUTH_ASSERTION_KEY_FILE: file, ORCHEO_AUTH_ASSERTION_HEADER: header }, 'auto');
    try {
      const secret = await serviceToken(t.app, 'svc');
      const first = assertionOf(await t.client.check(req(secret)), header)!;
      // A header outside the x-orcheo- prefix is still removed from anonymous allows.
      const anon = await t.client.check(req(undefined, { [header]: first }, { auth: 'public' }));
      assert.ok(anon.ok_response?.headers_to_remove?.includes(header));
      // Replaced the way a Secret volume does: a new file renamed over the old one.
      writeFileSync(`${file}.new`, pems[1]!);
      renameSync(`${file}.new`, file);
      const second = await until('the reloaded key to sign', async () => {
        const jws = assertionOf(await t.client.check(req(secret)), header)!;
        return kidOf(jws) !== kidOf(first) ? jws : undefined;
      });
      const remote = createRemoteJWKSet(jwksUrl(t.app));
      assert.equal((await jwtVerify(second, remote, { issuer: 'orcheo-authz', audience: HOST })).protectedHeader.alg, 'EdDSA');
      await jwtVerify(first, remote, { issuer: 'orcheo-authz', audience: HOST });
      // A broken file keeps the current key.
      writeFileSync(file, 'not a key');
      await until('the failed reload to be logged', () => t.logs.some((l) => l.includes('assertion key file reload failed')));
      assert.equal(kidOf(assertionOf(await t.client.check(req(secret, {}, { assertion_audience: 'x' })), header)!), kidOf(second));
      const body = pems.map((p) => p.split('\n')[1]!);
      const leak = t.logs.find((l) => body.some((b) => l.includes(b)));
      assert.equal(leak, undefined, 'key material must never be logged');
    } finally {
      await t.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
