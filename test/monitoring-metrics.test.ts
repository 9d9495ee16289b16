/**
 * The operator metrics the alert rules depend on, scraped from a live service over HTTP: build info,
 * JWT/JWKS series at 0 as soon as JWT is configured, the limiter backend from the start, bootstrap-token
 * uses, and policy reload failures / revision. Labels never carry the token.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from './helpers/app';

const BOOTSTRAP = 'bootstrap-monitoring-test-0123456789abcdef';
const VERSION = (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;

async function scrape(t: TestApp): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${t.app.httpPort}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

/** The value of one series (exact label string), or undefined when absent. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('operator metrics', () => {
  let t: TestApp;
  let dir: string;
  let policyFile: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orcheo-metrics-'));
    policyFile = path.join(dir, 'policy.yaml');
    fs.copyFileSync(path.join(__dirname, '..', '..', 'deploy', 'policy', 'policy.yaml'), policyFile);
    t = await startTestApp(
      {
        ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOTSTRAP,
        ORCHEO_AUTH_JWT_SECRET: 'a-test-secret-that-is-long-enough-0123456789',
        ORCHEO_AUTH_POLICY_FILE: policyFile,
        ORCHEO_AUTH_RATE_LIMIT_IP: '1000',
      },
      'auto',
    );
  });
  after(async () => {
    await t?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('exports build info, JWT/JWKS counters at 0 and the limiter backend before any traffic', async () => {
    const m = await scrape(t);
    assert.equal(value(m, `orcheo_authz_build_info{version="${VERSION}"}`), 1);
    assert.equal(value(m, 'orcheo_authz_jwks_fetches_total'), 0);
    assert.equal(value(m, 'orcheo_authz_jwks_fetch_failures_total'), 0);
    assert.equal(value(m, 'orcheo_authz_jwks_key_set_age_seconds'), -1, 'no remote key set: -1, never a fresh-looking 0');
    assert.equal(value(m, 'orcheo_authz_ratelimit_backend{backend="memory"}'), 1);
    assert.equal(value(m, 'orcheo_authz_ratelimit_backend{backend="redis"}'), 0);
    assert.equal(value(m, 'orcheo_authz_ratelimit_backend{backend="fallback"}'), 0);
    assert.equal(value(m, 'orcheo_authz_policy_revision'), 1);
    assert.equal(value(m, 'orcheo_authz_policy_reload_failures_total'), 0);
    const loadedAt = value(m, 'orcheo_authz_policy_loaded_timestamp_seconds');
    assert.ok(loadedAt !== undefined && Math.abs(loadedAt - Date.now() / 1000) < 3600, `loaded at ${loadedAt}`);
  });

  it('counts bootstrap-token uses, without the token in any label', async () => {
    const res = await t.client.check({ path: '/api/workflows', headers: { authorization: `Bearer ${BOOTSTRAP}` } });
    assert.equal(res.status.code, 0, JSON.stringify(res));
    const m = await scrape(t);
    assert.equal(value(m, 'orcheo_authz_bootstrap_token_uses_total{accepted="true"}'), 1);
    assert.ok(!m.includes(BOOTSTRAP), 'the bootstrap token reached /metrics');
  });

  it('counts a rejected policy reload and keeps the revision; a good one bumps it', async () => {
    fs.writeFileSync(policyFile, 'rules: [ { match: 42 } ]\n');
    // The file watcher polls once a second; bounded wait for the reload to be attempted.
    let m = '';
    for (let i = 0; i < 100 && value(m, 'orcheo_authz_policy_reload_failures_total') !== 1; i++) {
      await new Promise((r) => setTimeout(r, 100));
      m = await scrape(t);
    }
    assert.equal(value(m, 'orcheo_authz_policy_reload_failures_total'), 1);
    assert.equal(value(m, 'orcheo_authz_policy_revision'), 1);

    fs.copyFileSync(path.join(__dirname, '..', '..', 'deploy', 'policy', 'policy.yaml'), policyFile);
    for (let i = 0; i < 100 && value(m, 'orcheo_authz_policy_revision') !== 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      m = await scrape(t);
    }
    assert.equal(value(m, 'orcheo_authz_policy_revision'), 2);
    assert.equal(value(m, 'orcheo_authz_policy_reload_failures_total'), 1);
  });
});
