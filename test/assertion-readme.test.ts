import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { rotateKey } from '../src/assertion/key-store';
import { startTestApp, type TestApp } from './helpers/app';
import { assertionOf, HEADER, kidOf, req, serviceToken, until } from './helpers/assertion';

const REPO = resolve(__dirname, '..', '..');
const PYTHON = '/usr/bin/python3';
const README_URL = 'http://orcheo-authz:8181';

/** The README's verification examples: the first `js` and `python` blocks of its "Identity assertion" section. */
function readmeBlocks(): { js: string; python: string } {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Identity assertion\n');
  assert.ok(start >= 0, 'README has no "Identity assertion" section');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 5));
  const block = (lang: string) => {
    const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(section);
    assert.ok(m, `README's Identity assertion section has no ${lang} block`);
    assert.ok(m[1]!.includes(README_URL), `the ${lang} block should use ${README_URL}`);
    return m[1]!;
  };
  return { js: block('js'), python: block('python') };
}

/** Why PyJWT cannot run here, or undefined; in CI a missing PyJWT is a failure, not a skip. */
function pythonMissing(): string | undefined {
  const ok = existsSync(PYTHON) && require('node:child_process').spawnSync(PYTHON, ['-c', 'import jwt, cryptography'], { stdio: 'ignore' }).status === 0;
  if (ok) return undefined;
  if (process.env.CI_REQUIRE_BACKENDS) throw new Error(`CI_REQUIRE_BACKENDS is set but ${PYTHON} cannot import jwt (install python3-jwt)`);
  return `${PYTHON} with PyJWT (python3-jwt) not installed`;
}

function runPython(source: string, jws: string): Promise<Record<string, any>> {
  const harness = `${source}\nimport json, sys\nprint(json.dumps(identity_of({"${HEADER}": sys.argv[1]})))\n`;
  return new Promise((resolveRun, reject) => {
    execFile(PYTHON, ['-c', harness, jws], { timeout: 20_000 }, (err, stdout, stderr) => (err ? reject(new Error(`PyJWT example failed: ${stderr || err.message}`)) : resolveRun(JSON.parse(stdout))));
  });
}

// `import()` of an ES module from CommonJS output: tsc would turn a plain import() into require().
const importEsm = new Function('u', 'return import(u)') as (u: string) => Promise<{ identityOf(h: Record<string, string>): Promise<Record<string, any>> }>;

describe('the README verification examples run against a live instance', () => {
  let t: TestApp;
  let secret: string;
  let jsFile: string;
  let python: string;
  let identityOf: (h: Record<string, string>) => Promise<Record<string, any>>;
  const skipPython = pythonMissing();

  before(async () => {
    t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_ASSERTION: 'true' }, 'auto');
    secret = await serviceToken(t.app, 'readme', { scopes: ['workflows:read'], workspaces: ['ws-1'] });
    const base = `http://127.0.0.1:${t.app.httpPort}`;
    const blocks = readmeBlocks();
    python = blocks.python.replaceAll(README_URL, base);
    // Next to the build so `jose` resolves from this repository's node_modules.
    jsFile = join(__dirname, `.readme-example-${randomBytes(4).toString('hex')}.mjs`);
    writeFileSync(jsFile, blocks.js.replaceAll(README_URL, base));
    identityOf = (await importEsm(pathToFileURL(jsFile).href)).identityOf;
  });
  after(async () => {
    if (jsFile) rmSync(jsFile, { force: true });
    await t?.stop();
  });

  const expectIdentity = (p: Record<string, any>) => {
    assert.equal(p.sub, 'readme');
    assert.equal(p.iss, 'orcheo-authz');
    assert.deepEqual(p.orcheo.scopes, ['workflows:read']);
  };

  test('jose example verifies an ES256 assertion and refuses a tampered one', async () => {
    const jws = assertionOf(await t.client.check(req(secret)))!;
    expectIdentity(await identityOf({ [HEADER]: jws }));
    const [h, p, s] = jws.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), sub: 'admin' })).toString('base64url')}.${s}`;
    await assert.rejects(identityOf({ [HEADER]: forged }));
  });

  test('jose example refuses an assertion for another audience', async () => {
    const jws = assertionOf(await t.client.check(req(secret, {}, { assertion_audience: 'someone-else' })))!;
    await assert.rejects(identityOf({ [HEADER]: jws }), /aud/);
  });

  test('PyJWT example verifies ES256, then EdDSA after a rotation', { skip: skipPython }, async () => {
    const es = assertionOf(await t.client.check(req(secret)))!;
    expectIdentity(await runPython(python, es));
    const other = assertionOf(await t.client.check(req(secret, {}, { assertion_audience: 'someone-else' })))!;
    await assert.rejects(runPython(python, other), /Audience|audience/);
    const r = await rotateKey(t.app.db, { publishAheadMs: 0, ttlMs: 300_000, alg: 'EdDSA' });
    const ed = await until('the EdDSA key to sign', async () => {
      const jws = assertionOf(await t.client.check(req(secret)))!;
      return kidOf(jws) === r.kid ? jws : undefined;
    });
    expectIdentity(await runPython(python, ed));
    // Not the jose example here: its key set refetches an unknown kid at most every 30 s (jose's
    // cooldown), which the default publish-ahead of 60 s covers and this zero-delay rotation does not.
    // The ES256 assertion from before the rotation still verifies until it expires.
    expectIdentity(await runPython(python, es));
  });
});
