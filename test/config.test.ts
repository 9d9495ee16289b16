import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { ConfigError, loadConfig } from '../src/config/load';
import { SHIPPED_SECRET_VALUES } from '../src/config/shipped';
import { childStore } from './helpers/pglite-template';
import { startServer, tempHome } from './helpers/spawn';

const MAIN = join(__dirname, '..', 'src', 'main.js');

describe('configuration', () => {
  test('defaults', () => {
    const c = loadConfig({});
    assert.deepEqual([c.grpc.host, c.grpc.port, c.http.host, c.http.port], ['0.0.0.0', 9191, '0.0.0.0', 8181]);
    assert.equal(c.mode, undefined);
    assert.deepEqual([...c.jwt.allowedAlgorithms], ['RS256', 'HS256']);
    assert.equal(c.jwt.jwksCacheTtlSeconds, 300);
    assert.equal(c.jwt.jwksTimeoutSeconds, 5);
    assert.equal(c.jwt.leewaySeconds, 30);
    assert.equal(c.rateLimit.intervalSeconds, 60);
    assert.equal(c.autoMigrate, true);
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.jwt));
  });

  test('every malformed value is reported at once, naming its variable', () => {
    const env = {
      ORCHEO_AUTH_MODE: 'sometimes',
      ORCHEO_AUTH_GRPC_ADDR: 'localhost',
      ORCHEO_AUTH_RATE_LIMIT_IP: 'ten',
      ORCHEO_AUTH_RATE_LIMIT_INTERVAL: '0',
      ORCHEO_AUTH_JWKS_TIMEOUT: '-1',
      ORCHEO_AUTH_ALLOWED_ALGORITHMS: 'RS256,none',
      ORCHEO_AUTH_BOOTSTRAP_TOKEN_EXPIRES_AT: 'tomorrow',
      ORCHEO_AUTH_BOOTSTRAP_TOKEN_SCOPES: 'workflows:read,root',
      ORCHEO_AUTH_JWKS_STATIC: '{not json',
      ORCHEO_AUTH_DATABASE_URL: 'mysql://x',
      ORCHEO_AUTH_REDIS_URL: 'http://x',
      ORCHEO_AUTH_AUTO_MIGRATE: 'maybe',
      ORCHEO_AUTH_GRPC_TLS_CERT: '/nonexistent/cert.pem',
      LOG_LEVEL: 'loud',
    };
    try {
      loadConfig(env);
      assert.fail('expected ConfigError');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      const names = err.problems.map((p) => p.split(':')[0]);
      for (const v of Object.keys(env)) {
        if (v === 'ORCHEO_AUTH_GRPC_TLS_CERT') assert.ok(names.includes('ORCHEO_AUTH_GRPC_TLS_KEY'), 'cert without key');
        else assert.ok(names.includes(v), `no problem reported for ${v}: ${err.problems.join(' | ')}`);
      }
    }
  });

  test('secrets are not enumerable and never serialised', () => {
    const c = loadConfig({ ORCHEO_AUTH_JWT_SECRET: 'jwt-secret-value-0123456789abcdef', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: 'bootstrap-value-0123456789', ORCHEO_AUTH_DATABASE_URL: 'postgres://u:pw-secret@h/db' });
    const text = JSON.stringify(c);
    for (const s of ['jwt-secret-value', 'bootstrap-value', 'pw-secret']) assert.ok(!text.includes(s), `${s} serialised`);
    assert.equal(c.jwt.secret, 'jwt-secret-value-0123456789abcdef');
    assert.equal(c.bootstrap?.token, 'bootstrap-value-0123456789');
    assert.equal(c.databaseUrl, 'postgres://u:pw-secret@h/db');
  });

  test('bootstrap expiry accepts ISO 8601 and UNIX seconds; scopes a comma/space list', () => {
    const a = loadConfig({ ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: 'x'.repeat(20), ORCHEO_AUTH_BOOTSTRAP_TOKEN_EXPIRES_AT: '2024-05-01T12:00:00Z', ORCHEO_AUTH_BOOTSTRAP_TOKEN_SCOPES: 'admin:tokens:write, workflows:read' });
    assert.equal(a.bootstrap?.expiresAt, Date.parse('2024-05-01T12:00:00Z'));
    assert.deepEqual([...a.bootstrap!.scopes], ['admin:tokens:write', 'workflows:read']);
    const b = loadConfig({ ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: 'x'.repeat(20), ORCHEO_AUTH_BOOTSTRAP_TOKEN_EXPIRES_AT: '1714564800' });
    assert.equal(b.bootstrap?.expiresAt, 1714564800_000);
  });

  test('check-config prints every problem and exits 2; a good config exits 0', () => {
    const bad = spawnSync(process.execPath, [MAIN, 'check-config'], { env: { PATH: process.env.PATH, ORCHEO_AUTH_MODE: 'x', ORCHEO_AUTH_RATE_LIMIT_IP: '-3' }, encoding: 'utf8' });
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /2 configuration problems/);
    assert.match(bad.stderr, /ORCHEO_AUTH_MODE/);
    assert.match(bad.stderr, /ORCHEO_AUTH_RATE_LIMIT_IP/);
    const good = spawnSync(process.execPath, [MAIN, 'check-config'], { env: { PATH: process.env.PATH, ORCHEO_AUTH_MODE: 'required' }, encoding: 'utf8' });
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /Configuration OK/);
  });

  test('serve refuses to start on a malformed value, naming it', () => {
    const r = spawnSync(process.execPath, [MAIN, 'serve'], { env: { PATH: process.env.PATH, ORCHEO_AUTH_JWKS_CACHE_TTL: 'soon' }, encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /ORCHEO_AUTH_JWKS_CACHE_TTL/);
  });

  test('check-config warns (exit 0) about unknown names, short HS secrets and shipped credentials, and says the limits', () => {
    const env = { PATH: process.env.PATH, ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_RATE_LIMITS_IP: '5', ORCHEO_AUTH_JWT_SECRET: 'short-secret', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: 'CHANGE-ME-bootstrap-token' };
    const r = spawnSync(process.execPath, [MAIN, 'check-config'], { env, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /3 warnings/);
    assert.match(r.stderr, /ORCHEO_AUTH_RATE_LIMITS_IP is not a known variable.*did you mean ORCHEO_AUTH_RATE_LIMIT_IP\?/);
    assert.match(r.stderr, /ORCHEO_AUTH_JWT_SECRET is 12 bytes/);
    assert.match(r.stderr, /ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN equals a value shipped publicly/);
    assert.ok(!r.stderr.includes('short-secret') && !r.stderr.includes('CHANGE-ME-bootstrap-token'), 'secret values echoed');
    assert.match(r.stdout, /rate limits off/);
    const custom = spawnSync(process.execPath, [MAIN, 'check-config'], { env: { PATH: process.env.PATH, ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: 'my-CHANGE-ME-token-value', ORCHEO_AUTH_RATE_LIMIT_IP: '10' }, encoding: 'utf8' });
    assert.equal(custom.status, 0, custom.stderr);
    assert.match(custom.stderr, /still contains the placeholder CHANGE-ME/);
    assert.match(custom.stdout, /rate limits on: 10 failures per IP per 60 s \(in memory/);
  });

  test('a UNIX bootstrap expiry above 10^11 (milliseconds) is an error', () => {
    assert.throws(() => loadConfig({ ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: 'x'.repeat(20), ORCHEO_AUTH_BOOTSTRAP_TOKEN_EXPIRES_AT: '1714564800000' }), (e: ConfigError) => /ORCHEO_AUTH_BOOTSTRAP_TOKEN_EXPIRES_AT: .*milliseconds/.test(e.problems.join('|')));
    assert.equal(loadConfig({ ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: 'x'.repeat(20), ORCHEO_AUTH_BOOTSTRAP_TOKEN_EXPIRES_AT: '99999999999' }).bootstrap?.expiresAt, 99999999999_000);
  });

  test('cluster Redis URLs with several nodes and TLS are accepted', () => {
    assert.equal(loadConfig({ ORCHEO_AUTH_REDIS_URL: 'redis+cluster://a:1,b:2' }).redisUrl, 'redis+cluster://a:1,b:2');
    assert.equal(loadConfig({ ORCHEO_AUTH_REDIS_URL: 'rediss+cluster://u:p@a:1,b:2' }).redisUrl, 'rediss+cluster://u:p@a:1,b:2');
    assert.throws(() => loadConfig({ ORCHEO_AUTH_REDIS_URL: 'redis+cluster://:pw@bad host:1' }), (e: ConfigError) => /ORCHEO_AUTH_REDIS_URL/.test(e.message) && !e.message.includes('pw'));
  });

  test('a missing policy file is reported once', () => {
    const r = spawnSync(process.execPath, [MAIN, 'check-config'], { env: { PATH: process.env.PATH, ORCHEO_AUTH_POLICY_FILE: '/nonexistent/policy.yaml' }, encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.equal(r.stderr.split('file not found').length - 1, 1, r.stderr);
  });

  test('every secret-looking value shipped in deploy/ is in the compiled-in list', () => {
    const root = join(__dirname, '..', '..', 'deploy');
    const files: string[] = [];
    const walk = (d: string): void => {
      for (const f of readdirSync(d)) statSync(join(d, f)).isDirectory() ? walk(join(d, f)) : files.push(join(d, f));
    };
    walk(root);
    files.push(join(__dirname, '..', '..', 'docker-compose.yml'));
    const found = new Set<string>();
    for (const f of files) {
      for (const m of readFileSync(f, 'utf8').matchAll(/(?:bootstrap-service-token|jwt-secret|ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN|ORCHEO_AUTH_JWT_SECRET)["']?\s*[:=]\s*["']?([^"'\s$]+)/g)) {
        if (!/^[?${(]/.test(m[1]!)) found.add(m[1]!); // ${VAR:?…} and "$(openssl …)" are recipes, not values
      }
    }
    assert.ok(found.size > 0, 'no secrets found: the scan is broken');
    for (const v of found) assert.ok(SHIPPED_SECRET_VALUES.includes(v), `${v} ships in deploy/ but is not in SHIPPED_SECRET_VALUES`);
  });

  test('serve logs the same warnings at start, without secret values', async (t) => {
    const home = tempHome();
    t.after(() => home.remove());
    const store = await childStore();
    const server = await startServer({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_JWT_SECRET: 'short-secret', ORCHEO_AUTH_RATE_LIMTI_IP: '3', ...store.env }, { home: home.dir });
    t.after(async () => {
      await server.stop();
      await store.remove();
    });
    const line = await server.waitForLog(/did you mean ORCHEO_AUTH_RATE_LIMIT_IP/);
    assert.match(line, /"code":"config.warning"/);
    await server.waitForLog(/ORCHEO_AUTH_JWT_SECRET is 12 bytes/);
    assert.ok(!server.logs().includes('short-secret'));
  });
});
