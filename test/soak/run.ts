/**
 * Soak test (not part of `npm test`): `npm run soak`, i.e. `node dist/test/soak/run.js`.
 *
 * 1. Starts the real service (`node dist/src/main.js serve`) in a child process: required mode, a
 *    bootstrap token, an HS256 JWT secret, a service token created through the admin API, its own
 *    Postgres schema (the embedded store when Postgres is unreachable), LOG_LEVEL=info as deployed.
 * 2. Measures the maximum Check throughput for a mix of allows and denies, briefly, with h2load when
 *    installed (one h2load per request kind, raw gRPC frames), else with the Node load generator in
 *    another process (test/soak/load.ts).
 * 3. Runs SOAK_SECONDS (default 600) at half that rate, sampling /metrics every SOAK_SAMPLE_SECONDS
 *    (default 5): RSS (`orcheo_authz_process_resident_memory_bytes`), event-loop delay p99
 *    (`orcheo_authz_nodejs_eventloop_lag_p99_seconds`, reset at every scrape so each sample covers
 *    its interval), heap, handles, and decisions by code. A verifying probe sends every request
 *    kind once a second through a real gRPC client and checks decision and code.
 * 4. Reports RSS growth after the warm-up (30 s), event-loop p99 and errors; exits 1 when RSS grew
 *    10 % or more or any error occurred (gRPC error, wrong decision, unexpected deny code, h2load
 *    failure, error log line from the service, service exit).
 *
 * Variables: SOAK_SECONDS, SOAK_WARMUP_SECONDS (30), SOAK_MEASURE_SECONDS (10), SOAK_RATE (skip the
 * measurement and use this many Checks/s), SOAK_LOADGEN (`h2load` | `node`), SOAK_REPORT (path for the
 * JSON report).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import { AUTHZ_V3 } from '../../src/grpc/descriptors';
import { createTestSchema, pgReachable, type TestSchema } from '../helpers/pg';
import { checkRequest } from '../helpers/grpc-client';
import { decodeCheckResponse, encodeCheckRequest, type LoadBody, type LoadSummary } from './load';
import { sleep } from '../helpers/wait';

const MAIN_JS = join(__dirname, '..', '..', 'src', 'main.js');
const LOAD_JS = join(__dirname, 'load.js');
const BOOT = 'soak-bootstrap-token-0123456789abcdef';
const JWT_SECRET = 'soak-jwt-secret-0123456789abcdef0123456789';

const envNum = (name: string, def: number): number => {
  const v = process.env[name];
  if (v === undefined || v.trim() === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(v)}`);
  return n;
};

const SOAK_SECONDS = envNum('SOAK_SECONDS', 600);
const WARMUP_SECONDS = Math.min(envNum('SOAK_WARMUP_SECONDS', 30), SOAK_SECONDS / 3);
const MEASURE_SECONDS = envNum('SOAK_MEASURE_SECONDS', 10);
const SAMPLE_SECONDS = envNum('SOAK_SAMPLE_SECONDS', 5);
const RSS_GROWTH_LIMIT = 0.1;

const log = (msg: string): void => void process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

// ---------------------------------------------------------------- the service under test

interface Service {
  readonly child: ChildProcess;
  readonly grpcPort: number;
  readonly httpPort: number;
  /** Log lines at level error (50) or above, and how many lines in all. */
  readonly errorLines: string[];
  lines: number;
  exited: boolean;
  stop(): Promise<void>;
}

/** Spawns `serve`; reads its JSON log as it comes (never buffering it all), ports from "serving". */
async function startService(env: Record<string, string>, home: string): Promise<Service> {
  const child = spawn(process.execPath, [MAIN_JS, 'serve'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8', ORCHEO_AUTH_GRPC_ADDR: '127.0.0.1:0', ORCHEO_AUTH_HTTP_ADDR: '127.0.0.1:0', ORCHEO_AUTH_HTTP_AUTHZ_ADDR: '127.0.0.1:0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const svc: Service = {
    child,
    grpcPort: 0,
    httpPort: 0,
    errorLines: [],
    lines: 0,
    exited: false,
    async stop() {
      if (svc.exited) return;
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(t);
    },
  };
  child.once('exit', () => void (svc.exited = true));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('service not ready within 30 s')), 30_000);
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        svc.lines += 1;
        let j: { level?: number; msg?: string; grpc?: string; http?: string };
        try {
          j = JSON.parse(line);
        } catch {
          if (line.trim()) svc.errorLines.push(line.slice(0, 500));
          return;
        }
        if ((j.level ?? 0) >= 50 && svc.errorLines.length < 100) svc.errorLines.push(line.slice(0, 500));
        if (j.msg === 'orcheo-authz serving' && j.grpc && j.http) {
          (svc as { grpcPort: number }).grpcPort = Number(j.grpc.split(':').pop());
          (svc as { httpPort: number }).httpPort = Number(j.http.split(':').pop());
          clearTimeout(timer);
          resolve();
        }
      });
    }
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`service exited with ${code} before it was ready: ${svc.errorLines.join('\n')}`));
    });
  });
  await ready;
  return svc;
}

// ---------------------------------------------------------------- metrics

interface Sample {
  readonly t: number;
  readonly rss: number;
  readonly heapUsed: number;
  readonly lagP99: number;
  readonly handles: number;
  readonly checks: Record<string, number>;
}

function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

function checksByCode(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^orcheo_authz_checks_total\{([^}]*)\} ([0-9.eE+-]+)/gm)) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    out[labels.code ?? '?'] = Number(m[2]);
  }
  return out;
}

async function sample(httpPort: number, t0: number): Promise<Sample> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  return {
    t: (Date.now() - t0) / 1000,
    rss: metricValue(text, 'orcheo_authz_process_resident_memory_bytes'),
    heapUsed: metricValue(text, 'orcheo_authz_nodejs_heap_size_used_bytes'),
    lagP99: metricValue(text, 'orcheo_authz_nodejs_eventloop_lag_p99_seconds'),
    handles: metricValue(text, 'orcheo_authz_nodejs_active_handles_total'),
    checks: checksByCode(text),
  };
}

// ---------------------------------------------------------------- request mix

async function requestMix(httpPort: number): Promise<LoadBody[]> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/api/admin/service-tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${BOOT}`, 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'soak-reader', scopes: ['workflows:read'], workspaces: ['ws-a'] }),
  });
  const created = (await res.json()) as { secret?: string };
  if (res.status !== 201 && res.status !== 200) throw new Error(`creating the service token: HTTP ${res.status} ${JSON.stringify(created)}`);
  if (!created.secret) throw new Error('admin API returned no secret');
  const jwt = await new SignJWT({ sub: 'soak-user', workspace_ids: ['ws-a'], scope: 'workflows:read' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt()
    .setExpirationTime('2h')
    .sign(new TextEncoder().encode(JWT_SECRET));
  const spoof = { 'x-orcheo-subject': 'admin', 'x-orcheo-scopes': 'admin:tokens:write' };
  const body = (name: string, expect: 'allow' | 'deny', code: string | undefined, a: Parameters<typeof checkRequest>[0]): LoadBody => ({
    name,
    expect,
    ...(code ? { code } : {}),
    message: encodeCheckRequest(checkRequest(a)).toString('base64'),
  });
  return [
    body('allow-bootstrap', 'allow', undefined, { path: '/api/workflows', headers: { authorization: `Bearer ${BOOT}`, ...spoof } }),
    body('allow-service', 'allow', undefined, { path: '/api/workflows/wf-1?x=1', headers: { authorization: `Bearer ${created.secret}`, ...spoof } }),
    body('allow-jwt', 'allow', undefined, { path: '/api/workspaces/ws-a/items', headers: { authorization: `Bearer ${jwt}`, ...spoof } }),
    body('deny-invalid', 'deny', 'auth.invalid_token', { path: '/api/workflows', headers: { authorization: 'Bearer not-a-valid-token-7f3a9c', ...spoof } }),
    body('deny-scope', 'deny', 'auth.missing_scope', { method: 'POST', path: '/api/workflows', headers: { authorization: `Bearer ${created.secret}` } }),
    body('deny-missing', 'deny', 'auth.missing_token', { path: '/api/credentials', headers: spoof }),
  ];
}

const EXPECTED_CODES = new Set(['ok', 'auth.invalid_token', 'auth.missing_scope', 'auth.missing_token']);

// ---------------------------------------------------------------- load generators

interface LoadResult {
  readonly rps: number;
  readonly errors: number;
  readonly detail: string[];
}

function h2loadAvailable(): boolean {
  return spawnSync('h2load', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** One h2load per request kind (h2load sends one body), gRPC framing in a temp file. */
function runH2load(port: number, bodies: readonly LoadBody[], dir: string, opts: { seconds: number; rpsPerKind?: number; warmupSeconds?: number }, children: Set<ChildProcess>): Promise<LoadResult> {
  const runs = bodies.map((b, i) => {
    const msg = Buffer.from(b.message, 'base64');
    const frame = Buffer.alloc(5 + msg.length);
    frame.writeUInt8(0, 0);
    frame.writeUInt32BE(msg.length, 1);
    msg.copy(frame, 5);
    const file = join(dir, `body-${i}.bin`);
    writeFileSync(file, frame);
    const args = ['-c', '1', '-m', opts.rpsPerKind ? '16' : '32', '-t', '1', '-D', String(Math.round(opts.seconds)),
      '-H', 'content-type: application/grpc', '-H', 'te: trailers', '-d', file];
    if (opts.rpsPerKind) args.push(`--rps=${Math.max(1, Math.round(opts.rpsPerKind))}`);
    if (opts.warmupSeconds) args.push(`--warm-up-time=${opts.warmupSeconds}s`);
    args.push(`http://127.0.0.1:${port}/${AUTHZ_V3}/Check`);
    return new Promise<LoadResult>((resolve) => {
      const child = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      children.add(child);
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      child.once('exit', (code) => {
        children.delete(child);
        const rps = Number(/finished in [0-9.]+m?s, ([0-9.]+) req\/s/.exec(out)?.[1] ?? NaN);
        const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
        const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
        const failed = req ? Number(req[5]) + Number(req[6]) + Number(req[7]) : 1;
        const non2xx = codes ? Number(codes[2]) + Number(codes[3]) + Number(codes[4]) : 0;
        const errors = (code === 0 ? 0 : 1) + failed + non2xx;
        resolve({ rps: Number.isFinite(rps) ? rps : 0, errors, detail: [`${b.name}: ${Number.isFinite(rps) ? rps.toFixed(0) : '?'} req/s, ${req?.[4] ?? '?'} ok, ${failed} failed/errored/timeout, ${non2xx} non-2xx${code === 0 ? '' : `, h2load exit ${code}`}`] });
      });
    });
  });
  return Promise.all(runs).then((rs) => ({ rps: rs.reduce((s, r) => s + r.rps, 0), errors: rs.reduce((s, r) => s + r.errors, 0), detail: rs.flatMap((r) => r.detail) }));
}

/** The Node generator in its own process. */
function runNodeLoad(port: number, bodies: readonly LoadBody[], opts: { seconds: number; rps?: number }, children: Set<ChildProcess>): Promise<LoadResult> {
  const cfg = { port, bodies, concurrency: opts.rps ? 256 : 128, durationMs: opts.seconds * 1000, rps: opts.rps ?? 0, channels: 4 };
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [LOAD_JS, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.add(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => {
      children.delete(child);
      const line = out.split('\n').find((l) => l.includes('"summary"'));
      if (!line) return resolve({ rps: 0, errors: 1, detail: [`load generator exited ${code} without a summary`] });
      const s = JSON.parse(line) as LoadSummary;
      resolve({ rps: s.rps, errors: s.grpcErrors + s.mismatches, detail: [`node load: ${s.completed} calls, ${s.rps} req/s, p99 ${s.latencyMs.p99} ms, ${s.grpcErrors} gRPC errors, ${s.mismatches} mismatches`, ...s.samples] });
    });
  });
}

// ---------------------------------------------------------------- probe

/** Every kind once per tick through grpc-js, verifying decision and code; counts problems. */
function startProbe(port: number, bodies: readonly LoadBody[]): { stop(): Promise<{ calls: number; errors: number; notes: string[]; maxMs: number }> } {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  let calls = 0;
  let errors = 0;
  let maxMs = 0;
  const notes: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      await Promise.all(
        bodies.map(
          (b) =>
            new Promise<void>((resolve) => {
              const t0 = performance.now();
              client.makeUnaryRequest(`/${AUTHZ_V3}/Check`, (x: Buffer) => x, (x: Buffer) => x, Buffer.from(b.message, 'base64'), { deadline: Date.now() + 5000 }, (err, res) => {
                calls += 1;
                maxMs = Math.max(maxMs, performance.now() - t0);
                if (err || !res) {
                  errors += 1;
                  if (notes.length < 20) notes.push(`${b.name}: gRPC error ${err?.code} ${err?.details}`);
                } else {
                  const r = decodeCheckResponse(res);
                  const allowed = Boolean(r.ok_response);
                  if ((b.expect === 'allow') !== allowed || (b.code && r.status?.message !== b.code)) {
                    errors += 1;
                    if (notes.length < 20) notes.push(`${b.name}: got ${allowed ? 'allow' : r.status?.message}`);
                  }
                }
                resolve();
              });
            }),
        ),
      );
      await sleep(1000);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      client.close();
      return { calls, errors, notes, maxMs };
    },
  };
}

// ---------------------------------------------------------------- main

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
};
const mb = (b: number): string => `${(b / 1024 / 1024).toFixed(1)} MiB`;

async function main(): Promise<number> {
  const children = new Set<ChildProcess>();
  const home = mkdtempSync(join(tmpdir(), 'orcheo-authz-soak-'));
  let schema: TestSchema | undefined;
  let svc: Service | undefined;
  const cleanup = async (): Promise<void> => {
    for (const c of children) c.kill('SIGKILL');
    await svc?.stop().catch(() => undefined);
    await schema?.drop().catch((err: unknown) => log(`dropping schema ${schema?.schema}: ${(err as Error).message}`));
    rmSync(home, { recursive: true, force: true });
  };
  const onSignal = (): void => {
    void cleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const env: Record<string, string> = { ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT, ORCHEO_AUTH_JWT_SECRET: JWT_SECRET };
    if (await pgReachable()) {
      schema = await createTestSchema('soak');
      env.ORCHEO_AUTH_DATABASE_URL = schema.url;
    } else {
      env.ORCHEO_AUTH_SERVICE_TOKEN_DB_PATH = join(home, 'db');
    }
    svc = await startService(env, home);
    log(`service pid ${svc.child.pid}: gRPC ${svc.grpcPort}, HTTP ${svc.httpPort}, store ${schema ? `postgres schema ${schema.schema}` : 'embedded'}`);
    const bodies = await requestMix(svc.httpPort);
    const gen = (process.env.SOAK_LOADGEN ?? (h2loadAvailable() ? 'h2load' : 'node')) as 'h2load' | 'node';

    // 1. Maximum throughput, briefly.
    let rate: number;
    let maxRps: number | undefined;
    if (process.env.SOAK_RATE) {
      rate = envNum('SOAK_RATE', 1);
      log(`rate fixed by SOAK_RATE: ${rate} Checks/s`);
    } else {
      log(`measuring max throughput with ${gen} for ${MEASURE_SECONDS} s`);
      const m = gen === 'h2load' ? await runH2load(svc.grpcPort, bodies, home, { seconds: MEASURE_SECONDS, warmupSeconds: 2 }, children) : await runNodeLoad(svc.grpcPort, bodies, { seconds: MEASURE_SECONDS }, children);
      for (const d of m.detail) log(`  ${d}`);
      if (m.rps <= 0) throw new Error('throughput measurement failed');
      maxRps = Math.round(m.rps);
      rate = Math.max(1, Math.round(m.rps / 2));
      log(`max ≈ ${maxRps} Checks/s; soaking at ${rate} Checks/s`);
      await sleep(3000); // let the measurement's backlog drain before the baseline
    }

    // 2. Soak at `rate`, sampling.
    const t0 = Date.now();
    const before = await sample(svc.httpPort, t0);
    const probe = startProbe(svc.grpcPort, bodies);
    const load = gen === 'h2load' ? runH2load(svc.grpcPort, bodies, home, { seconds: SOAK_SECONDS, rpsPerKind: rate / bodies.length }, children) : runNodeLoad(svc.grpcPort, bodies, { seconds: SOAK_SECONDS, rps: rate }, children);
    let loadDone = false;
    void load.then(() => void (loadDone = true));
    const samples: Sample[] = [];
    let sampleErrors = 0;
    while (!loadDone && !svc.exited) {
      await sleep(SAMPLE_SECONDS * 1000);
      if (loadDone || svc.exited) break;
      try {
        const s = await sample(svc.httpPort, t0);
        samples.push(s);
        if (samples.length % Math.max(1, Math.round(60 / SAMPLE_SECONDS)) === 0) {
          log(`t=${s.t.toFixed(0)}s rss ${mb(s.rss)} heap ${mb(s.heapUsed)} lag p99 ${(s.lagP99 * 1000).toFixed(1)} ms handles ${s.handles}`);
        }
      } catch (err) {
        sampleErrors += 1;
        log(`sampling /metrics failed: ${(err as Error).message}`);
      }
    }
    const loadResult = await load;
    const probeResult = await probe.stop();
    const after = svc.exited ? undefined : await sample(svc.httpPort, t0).catch(() => undefined);

    // 3. Figures.
    const steady = samples.filter((s) => s.t >= WARMUP_SECONDS);
    const startWindow = steady.filter((s) => s.t < WARMUP_SECONDS + 3 * SAMPLE_SECONDS + 0.5);
    const endWindow = steady.slice(-3);
    const rssStart = median(startWindow.map((s) => s.rss));
    const rssEnd = median(endWindow.map((s) => s.rss));
    const growth = (rssEnd - rssStart) / rssStart;
    const lag = steady.map((s) => s.lagP99).filter(Number.isFinite);
    const lagMax = lag.length ? Math.max(...lag) : NaN;
    const lagMedian = median(lag);
    const unexpected: Record<string, number> = {};
    for (const [code, n] of Object.entries(after?.checks ?? {})) {
      const delta = n - (before.checks[code] ?? 0);
      if (!EXPECTED_CODES.has(code) && delta > 0) unexpected[code] = delta;
    }
    const decided = Object.entries(after?.checks ?? {}).reduce((sum, [code, n]) => sum + n - (before.checks[code] ?? 0), 0);
    const allowed = (after?.checks.ok ?? 0) - (before.checks.ok ?? 0);
    const errors =
      loadResult.errors + probeResult.errors + svc.errorLines.length + Object.values(unexpected).reduce((a, b) => a + b, 0) + sampleErrors + (svc.exited ? 1 : 0) + (after ? 0 : 1);

    const report = {
      seconds: SOAK_SECONDS,
      warmupSeconds: WARMUP_SECONDS,
      loadGenerator: gen,
      maxRps,
      rate,
      achievedRps: Math.round(decided / ((Date.now() - t0) / 1000)),
      checks: decided,
      allows: allowed,
      denies: decided - allowed,
      rss: { start: rssStart, end: rssEnd, growthPct: +(growth * 100).toFixed(2), min: Math.min(...steady.map((s) => s.rss)), max: Math.max(...steady.map((s) => s.rss)) },
      heapUsed: { start: median(startWindow.map((s) => s.heapUsed)), end: median(endWindow.map((s) => s.heapUsed)) },
      handles: { start: startWindow[0]?.handles, end: endWindow.at(-1)?.handles },
      eventLoopP99Ms: { median: +(lagMedian * 1000).toFixed(2), max: +(lagMax * 1000).toFixed(2) },
      errors,
      errorDetail: {
        load: loadResult.errors,
        probe: probeResult.errors,
        serviceErrorLogLines: svc.errorLines.length,
        unexpectedCodes: unexpected,
        sampleFailures: sampleErrors,
        serviceExited: svc.exited,
      },
      probe: { calls: probeResult.calls, maxLatencyMs: +probeResult.maxMs.toFixed(1), notes: probeResult.notes },
      loadDetail: loadResult.detail,
      serviceErrorLines: svc.errorLines.slice(0, 10),
      serviceLogLines: svc.lines,
      samples: samples.map((s) => ({ t: s.t, rss: s.rss, heapUsed: s.heapUsed, lagP99: s.lagP99, handles: s.handles })),
    };
    if (process.env.SOAK_REPORT) writeFileSync(process.env.SOAK_REPORT, `${JSON.stringify(report, null, 2)}\n`);
    const ok = growth < RSS_GROWTH_LIMIT && errors === 0 && Number.isFinite(growth);
    log('---------------------------------------------------------------- soak result');
    log(`load: ${gen}, max ${maxRps ?? '-'} Checks/s, soak rate ${rate}/s (achieved ${report.achievedRps}/s), ${decided} Checks (${allowed} allowed, ${decided - allowed} denied) in ${SOAK_SECONDS} s`);
    log(`RSS after ${WARMUP_SECONDS} s warm-up ${mb(rssStart)} → end ${mb(rssEnd)}: ${(growth * 100).toFixed(2)} % (limit ${RSS_GROWTH_LIMIT * 100} %); min ${mb(report.rss.min)} max ${mb(report.rss.max)}`);
    log(`heap used ${mb(report.heapUsed.start)} → ${mb(report.heapUsed.end)}; handles ${report.handles.start} → ${report.handles.end}`);
    log(`event-loop delay p99 per ${SAMPLE_SECONDS} s sample: median ${report.eventLoopP99Ms.median} ms, max ${report.eventLoopP99Ms.max} ms`);
    log(`errors: ${errors} ${JSON.stringify(report.errorDetail)}`);
    for (const d of loadResult.detail) log(`  ${d}`);
    for (const n of probeResult.notes) log(`  probe: ${n}`);
    for (const l of svc.errorLines.slice(0, 10)) log(`  service: ${l}`);
    log(ok ? 'PASS' : 'FAIL');
    process.stdout.write(`${JSON.stringify({ ...report, samples: undefined })}\n`);
    return ok ? 0 : 1;
  } finally {
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`soak failed: ${(err as Error)?.stack ?? String(err)}`);
    process.exit(2);
  },
);
