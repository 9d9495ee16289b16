import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config/load';

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
});
