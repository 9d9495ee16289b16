/**
 * A real Prometheus (Debian package `prometheus`) as a child process with the shipped rules, scraping a
 * live orcheo-authz under a little traffic: the target is up, every rule evaluates without error, and
 * every query of the shipped Grafana dashboard returns series.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from './helpers/app';
import { repoPath } from './helpers/envoy-schema';
import { freePort } from './helpers/wait';
import { missingBinary } from './helpers/monitoring';

const PROMETHEUS = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus';
const BOUND_MS = 60_000;

/** Every Prometheus query in the dashboard, with Grafana's $__rate_interval made concrete. */
function dashboardQueries(): Array<{ panel: string; expr: string }> {
  const d = JSON.parse(fs.readFileSync(repoPath('deploy/monitoring/dashboard.json'), 'utf8')) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> };
  return d.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr.replaceAll('$__rate_interval', '30s') })));
}

async function api<T = any>(port: number, p: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${port}${p}`);
  const body = (await res.json()) as { status: string; data: T; error?: string };
  assert.equal(body.status, 'success', `${p}: ${body.error}`);
  return body.data;
}

/** Poll `probe` until it returns undefined (done) or the bound passes; returns the last complaint. */
async function until(probe: () => Promise<string | undefined>): Promise<string | undefined> {
  const end = Date.now() + BOUND_MS;
  let last: string | undefined = 'not polled';
  while (Date.now() < end) {
    last = await probe().catch((err: Error) => err.message);
    if (last === undefined) return undefined;
    await new Promise((r) => setTimeout(r, 250));
  }
  return last;
}

describe('a real Prometheus scraping orcheo-authz', () => {
  const skip = missingBinary(PROMETHEUS);
  let t: TestApp;
  let prom: ChildProcess | undefined;
  let promLog = '';
  let port = 0;
  let dir = '';
  let traffic: NodeJS.Timeout | undefined;

  before(async () => {
    if (skip) return;
    t = await startTestApp({ ORCHEO_AUTH_JWT_SECRET: 'a-test-secret-that-is-long-enough-0123456789', ORCHEO_AUTH_RATE_LIMIT_IP: '5', ORCHEO_AUTH_MODE: 'required' }, 'auto');
    // Allowed-and-denied traffic, some of it over one IP's limit, for the whole test.
    let n = 0;
    traffic = setInterval(() => {
      n++;
      void t.client.check({ path: '/api/workflows', sourceIp: `198.51.100.${n % 3 === 0 ? 1 : 2 + (n % 200)}` }).catch(() => undefined);
      void t.client.check({ path: '/healthz', sourceIp: '203.0.113.9', contextExtensions: { auth: 'public' } }).catch(() => undefined);
    }, 50);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orcheo-prom-'));
    const config = [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      `rule_files: [${JSON.stringify(repoPath('deploy/monitoring/rules.yaml'))}]`,
      'scrape_configs:',
      '  - job_name: orcheo-authz',
      `    static_configs: [{ targets: ["127.0.0.1:${t.app.httpPort}"] }]`,
    ].join('\n');
    fs.writeFileSync(path.join(dir, 'prometheus.yml'), config);
    port = await freePort();
    prom = spawn(PROMETHEUS, [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    prom.stdout?.on('data', (b: Buffer) => (promLog += b.toString()));
    prom.stderr?.on('data', (b: Buffer) => (promLog += b.toString()));
    const notReady = await until(async () => ((await fetch(`http://127.0.0.1:${port}/-/ready`)).ok ? undefined : 'not ready'));
    assert.equal(notReady, undefined, `prometheus did not become ready:\n${promLog.slice(-2000)}`);
  });

  after(async () => {
    if (traffic) clearInterval(traffic);
    if (prom && prom.exitCode === null) {
      const exited = new Promise((r) => prom!.once('exit', r));
      prom.kill('SIGTERM');
      await exited;
    }
    await t?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the orcheo-authz target is up', { skip }, async () => {
    const problem = await until(async () => {
      const d = await api<{ activeTargets: Array<{ labels: { job: string }; health: string; lastError: string }> }>(port, '/api/v1/targets');
      const tg = d.activeTargets.find((x) => x.labels.job === 'orcheo-authz');
      return tg?.health === 'up' ? undefined : `target ${JSON.stringify(tg)}`;
    });
    assert.equal(problem, undefined);
  });

  it('every shipped rule has evaluated without error', { skip }, async () => {
    const problem = await until(async () => {
      const d = await api<{ groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string; lastEvaluation: string }> }> }>(port, '/api/v1/rules');
      const rules = d.groups.flatMap((g) => g.rules);
      if (rules.length === 0) return 'no rules loaded';
      const bad = rules.filter((r) => r.health !== 'ok' || r.lastEvaluation.startsWith('0001'));
      return bad.length ? bad.map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`).join('; ') : undefined;
    });
    assert.equal(problem, undefined);
  });

  it('every dashboard query returns series', { skip }, async (tc) => {
    const queries = dashboardQueries();
    assert.ok(queries.length >= 10, `only ${queries.length} queries`);
    const problem = await until(async () => {
      const empty: string[] = [];
      for (const q of queries) {
        const d = await api<{ result: unknown[] }>(port, `/api/v1/query?query=${encodeURIComponent(q.expr)}`);
        if (d.result.length === 0) empty.push(`${q.panel}: ${q.expr}`);
      }
      return empty.length ? `empty: ${empty.join(' | ')}` : undefined;
    });
    assert.equal(problem, undefined);
    tc.diagnostic(`${queries.length} dashboard queries returned series`);
  });
});
