import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config/load';
import { runCli, tempHome } from './helpers/spawn';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

describe('identity assertion configuration', () => {
  let dir: string;
  const file = (name: string, content: string) => {
    const f = join(dir, name);
    writeFileSync(f, content);
    return f;
  };
  const pkcs8 = (k: { privateKey: { export(o: object): string | Buffer } }) => k.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'assertion-config-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('defaults: off, x-orcheo-identity, issuer orcheo-authz, 300 s, store keys', () => {
    const a = loadConfig({}).assertion;
    assert.deepEqual({ ...a }, { enabled: false, header: 'x-orcheo-identity', issuer: 'orcheo-authz', audience: undefined, ttlSeconds: 300, keyFile: undefined });
  });

  test('P-256 and Ed25519 key files are accepted', () => {
    for (const k of [generateKeyPairSync('ec', { namedCurve: 'P-256' }), generateKeyPairSync('ed25519')]) {
      const f = file(`ok-${k.privateKey.asymmetricKeyType}.pem`, pkcs8(k));
      assert.equal(loadConfig({ ORCHEO_AUTH_ASSERTION: 'true', ORCHEO_AUTH_ASSERTION_KEY_FILE: f }).assertion.keyFile, f);
    }
  });

  test('every problem is reported at once, naming the variable, never the key', () => {
    const rsa = file('rsa.pem', pkcs8(generateKeyPairSync('rsa', { modulusLength: 2048 })));
    const p = problemsOf({ ORCHEO_AUTH_ASSERTION: 'maybe', ORCHEO_AUTH_ASSERTION_TTL: '5', ORCHEO_AUTH_ASSERTION_HEADER: 'bad header', ORCHEO_AUTH_ASSERTION_KEY_FILE: rsa });
    assert.equal(p.length, 4, p.join('\n'));
    assert.match(p.join('\n'), /ORCHEO_AUTH_ASSERTION: expected true or false/);
    assert.match(p.join('\n'), /ORCHEO_AUTH_ASSERTION_TTL: must be between 10 and 86400/);
    assert.match(p.join('\n'), /ORCHEO_AUTH_ASSERTION_HEADER: not a valid header name/);
    assert.match(p.join('\n'), /ORCHEO_AUTH_ASSERTION_KEY_FILE: .*unsupported key type rsa/);
  });

  test('other curves, public keys, missing files and reserved header names are refused', () => {
    const p384 = file('p384.pem', pkcs8(generateKeyPairSync('ec', { namedCurve: 'P-384' })));
    assert.match(problemsOf({ ORCHEO_AUTH_ASSERTION_KEY_FILE: p384 }).join(), /unsupported key type EC secp384r1/);
    const pub = file('pub.pem', generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString());
    assert.match(problemsOf({ ORCHEO_AUTH_ASSERTION_KEY_FILE: pub }).join(), /not a PEM private key/);
    assert.match(problemsOf({ ORCHEO_AUTH_ASSERTION_KEY_FILE: join(dir, 'absent.pem') }).join(), /file not found/);
    assert.match(problemsOf({ ORCHEO_AUTH_ASSERTION_HEADER: 'X-Orcheo-Subject' }).join(), /already used/);
  });

  test('check-config prints the assertion problems (exit 2); rotate refuses while a key file is configured (exit 1)', async () => {
    const home = tempHome();
    try {
      const r = await runCli(['check-config'], { ORCHEO_AUTH_ASSERTION_TTL: '0', ORCHEO_AUTH_ASSERTION_KEY_FILE: join(dir, 'absent.pem') }, { home: home.dir });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /2 configuration problems/);
      assert.match(r.stderr, /ORCHEO_AUTH_ASSERTION_TTL/);
      const key = file('cli.pem', pkcs8(generateKeyPairSync('ed25519')));
      const rot = await runCli(['assertion-key', 'rotate'], { ORCHEO_AUTH_ASSERTION_KEY_FILE: key, ORCHEO_AUTH_SERVICE_TOKEN_DB_PATH: join(home.dir, 'db') }, { home: home.dir });
      assert.equal(rot.code, 1);
      assert.match(rot.stderr, /rotate by replacing the file/);
    } finally {
      home.remove();
    }
  });
});
