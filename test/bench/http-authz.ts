/**
 * HTTP authorization interface bench: allow throughput of the interface (forward-auth call, cached
 * JWT) against a bare node:http server answering 200 with the very headers the service answered,
 * both in their own process on the server core, measured alternately in the same run; and what
 * nginx -> upstream costs with and without auth_request in front (the shipped nginx.conf).
 * h2load --h1 generates load when installed (a C client), else a keep-alive node:http loop.
 *
 * Run alone: `node dist/test/bench/http-authz.js` (BENCH_SECONDS, BENCH_CONNECTIONS, BENCH_REPEATS),
 * or from `npm run bench` with BENCH_ONLY matching "http".
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { proxyBinary, startEcho, startNginx } from '../helpers/proxy';
import { jwtPayload, signHs256 } from './frames';
import { h2loadAvailable } from './h2load';
import { LOAD_CORE, pinned, SERVER_CORE, startService, track } from './service-process';

export interface HttpAuthzBenchOptions {
  readonly seconds?: number;
  readonly warmupSeconds?: number;
  readonly connections?: number;
  readonly repeats?: number;
}

export interface HttpAuthzBenchResult {
  readonly generator: string;
  readonly bareRps: number;
  readonly interfaceRps: number;
  /** interfaceRps / bareRps; target >= 0.85. */
  readonly ratio: number;
  /** Server CPU per answered call in the measured window (utime+stime from /proc), µs. */
  readonly bareCpuUs: number;
  readonly interfaceCpuUs: number;
  readonly nginx?: { readonly upstreamOnlyRps: number; readonly withAuthRequestRps: number } | undefined;
}

/** h2load prints this when the warm-up ends and the measured window begins. */
const MEASURE_START = 'Main benchmark duration is started';
const SECRET = `bench-http-${randomBytes(16).toString('hex')}`;
const URI = '/api/workflows/1';

interface Target {
  readonly url: string;
  readonly headers: Record<string, string>;
}

/** h2load over HTTP/1.1; every answer must be a 2xx or the figure means nothing. */
async function h2loadH1(t: Target, conns: number, seconds: number, warmup: number, onMeasureStart: () => void): Promise<number> {
  const args = ['--h1', '-c', String(conns), '-m', '1', '-t', '1', '-D', `${Math.round(seconds * 1000)}ms`, '--warm-up-time', `${Math.round(warmup * 1000)}ms`];
  for (const [k, v] of Object.entries(t.headers)) args.push('-H', `${k}: ${v}`);
  const [cmd, full] = pinned(LOAD_CORE, 'h2load', [...args, t.url]);
  const out = await new Promise<string>((resolve, reject) => {
    const child = track(spawn(cmd, full, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let text = '';
    child.stdout!.on('data', (b: Buffer) => {
      const had = text.includes(MEASURE_START);
      text += b.toString();
      if (!had && text.includes(MEASURE_START)) onMeasureStart();
    });
    child.stderr!.on('data', (b: Buffer) => (text += b.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`h2load exited ${code}: ${text}`))));
  });
  const rps = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out);
  const bad = /status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  if (!rps || !bad || Number(bad[1]) + Number(bad[2]) + Number(bad[3]) > 0) throw new Error(`h2load: not every answer was a 2xx:\n${out}`);
  return Number(rps[1]);
}

/** Fallback generator: `conns` keep-alive loops for `seconds` (costs more per call than h2load). */
async function nodeLoad(t: Target, conns: number, seconds: number, warmup: number, onMeasureStart: () => void): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: conns });
  const one = (): Promise<void> => new Promise((resolve, reject) => {
    const req = request(t.url, { agent, headers: t.headers }, (res) => {
      res.resume();
      res.on('end', () => ((res.statusCode ?? 0) < 300 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
  let counting = false;
  let done = 0;
  const stopAt = Date.now() + (warmup + seconds) * 1000;
  setTimeout(() => {
    counting = true;
    onMeasureStart();
  }, warmup * 1000).unref();
  const start = Date.now() + warmup * 1000;
  await Promise.all(Array.from({ length: conns }, async () => {
    while (Date.now() < stopAt) {
      await one();
      if (counting) done++;
    }
  }));
  agent.destroy();
  return done / ((Date.now() - start) / 1000);
}

/** The bare comparison server: 200 with `headers`, nothing else, pinned like the service. */
async function startBare(dir: string, headers: Record<string, string>): Promise<{ port: number; pid: number; stop(): void }> {
  const script = `const h=JSON.parse(process.env.BARE_HEADERS);require('http').createServer((q,s)=>{q.resume();s.writeHead(200,h);s.end()}).listen(0,'127.0.0.1',function(){console.log('port '+this.address().port)})`;
  const log = join(dir, 'bare.log');
  const fd = openSync(log, 'w');
  const [cmd, args] = pinned(SERVER_CORE, process.execPath, ['-e', script]);
  const child = track(spawn(cmd, args, { env: { ...process.env, BARE_HEADERS: JSON.stringify(headers) }, stdio: ['ignore', fd, fd] }));
  closeSync(fd);
  for (let i = 0; i < 200; i++) {
    const m = /port (\d+)/.exec(readFileSync(log, 'utf8'));
    if (m) return { port: Number(m[1]), pid: child.pid!, stop: () => child.kill('SIGTERM') };
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill('SIGKILL');
  throw new Error(`bare server did not start: ${readFileSync(log, 'utf8')}`);
}

/** utime + stime of a process, µs (USER_HZ 100). */
function cpuUs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1e6) / 100;
}

function probe(t: Target): Promise<{ status: number; headers: Record<string, string> }> {
  return new Promise((resolve, reject) => {
    request(t.url, { headers: t.headers, agent: false }, (res) => {
      res.resume();
      const h: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string' && k.startsWith('x-orcheo-')) h[k] = v;
      h['cache-control'] = 'no-store';
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: h }));
    }).on('error', reject).end();
  });
}

export async function benchHttpAuthz(opts: HttpAuthzBenchOptions = {}): Promise<HttpAuthzBenchResult> {
  const seconds = opts.seconds ?? 2;
  const warmup = opts.warmupSeconds ?? 0.5;
  const conns = opts.connections ?? 8;
  const repeats = opts.repeats ?? 3;
  const load = h2loadAvailable() ? h2loadH1 : nodeLoad;
  const dir = mkdtempSync(join(tmpdir(), 'orcheo-bench-http-'));
  const token = signHs256(SECRET, jwtPayload('bench-user', 'bench-jti'));
  const stops: Array<() => unknown> = [];
  try {
    const svc = await startService({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_SERVICE_TOKEN_DB_PATH: 'memory://', ORCHEO_AUTH_JWT_SECRET: SECRET }, dir, 'http-authz');
    stops.push(() => svc.stop());
    const line = readFileSync(svc.logPath, 'utf8').split('\n').find((l) => l.includes('orcheo-authz serving'))!;
    const authzPort = Number(String((JSON.parse(line) as { http_authz: string }).http_authz).split(':').pop());
    const iface: Target = { url: `http://127.0.0.1:${authzPort}/check`, headers: { authorization: `Bearer ${token}`, 'x-forwarded-uri': URI, 'x-forwarded-method': 'GET' } };
    const allowed = await probe(iface);
    if (allowed.status !== 200 || allowed.headers['x-orcheo-subject'] !== 'bench-user') throw new Error(`probe: expected an allow for bench-user, got ${allowed.status}`);
    const bare = await startBare(dir, allowed.headers);
    stops.push(() => bare.stop());
    const bareT: Target = { ...iface, url: `http://127.0.0.1:${bare.port}/check` };

    // Best throughput of the repeats; CPU per call from the same best repeat.
    const timed = async (t: Target, pid: number): Promise<{ rps: number; cpu: number }> => {
      let c0 = NaN;
      const rps = await load(t, conns, seconds, warmup, () => (c0 = cpuUs(pid)));
      return { rps, cpu: (cpuUs(pid) - c0) / (rps * seconds) };
    };
    let b = { rps: 0, cpu: 0 };
    let s = { rps: 0, cpu: 0 };
    for (let i = 0; i < repeats; i++) {
      const rb = await timed(bareT, bare.pid);
      if (rb.rps > b.rps) b = rb;
      const rs = await timed(iface, svc.pid);
      if (rs.rps > s.rps) s = rs;
    }

    let nginx: HttpAuthzBenchResult['nginx'];
    const { bin } = proxyBinary('nginx');
    if (bin) {
      const echo = await startEcho();
      stops.push(() => echo.close());
      const withAuth = await startNginx(bin, { authzPort, upstreamPort: echo.port });
      stops.push(() => withAuth.close());
      const noAuth = await startNginx(bin, { authzPort, upstreamPort: echo.port }, [['auth_request /_orcheo_authz;', 'auth_request off;']]);
      stops.push(() => noAuth.close());
      const via = (port: number): Target => ({ url: `http://127.0.0.1:${port}${URI}`, headers: { authorization: `Bearer ${token}` } });
      let upstreamOnlyRps = 0;
      let withAuthRequestRps = 0;
      for (let i = 0; i < repeats; i++) {
        upstreamOnlyRps = Math.max(upstreamOnlyRps, await load(via(noAuth.port), conns, seconds, warmup, () => undefined));
        withAuthRequestRps = Math.max(withAuthRequestRps, await load(via(withAuth.port), conns, seconds, warmup, () => undefined));
      }
      nginx = { upstreamOnlyRps, withAuthRequestRps };
    }
    return { generator: load === h2loadH1 ? 'h2load --h1' : 'node:http keep-alive', bareRps: b.rps, interfaceRps: s.rps, ratio: s.rps / b.rps, bareCpuUs: b.cpu, interfaceCpuUs: s.cpu, nginx };
  } finally {
    for (const stop of stops.reverse()) await stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatHttpAuthz(r: HttpAuthzBenchResult, conns: number): string {
  const lines = [
    `HTTP authorization interface, forward-auth allow (cached JWT), ${r.generator}, ${conns} connections:`,
    `  bare node:http (200 + the same headers)  ${Math.round(r.bareRps)} req/s  ${r.bareCpuUs.toFixed(1)} us CPU/call`,
    `  orcheo-authz HTTP interface              ${Math.round(r.interfaceRps)} req/s  ${r.interfaceCpuUs.toFixed(1)} us CPU/call  x${r.ratio.toFixed(2)} of bare (target >= 0.85)${r.ratio >= 0.85 ? '' : '  BELOW TARGET'}`,
  ];
  if (r.nginx) {
    lines.push(`  nginx -> upstream                        ${Math.round(r.nginx.upstreamOnlyRps)} req/s (nginx and the echo upstream are not pinned)`);
    lines.push(`  nginx auth_request -> upstream           ${Math.round(r.nginx.withAuthRequestRps)} req/s  x${(r.nginx.withAuthRequestRps / r.nginx.upstreamOnlyRps).toFixed(2)} of nginx alone`);
  } else lines.push('  nginx rows skipped: nginx not installed');
  return lines.join('\n');
}

if (require.main === module) {
  const n = (name: string, def: number): number => Number(process.env[name] ?? def);
  const conns = n('BENCH_CONNECTIONS', 8);
  benchHttpAuthz({ seconds: n('BENCH_SECONDS', 2), warmupSeconds: n('BENCH_WARMUP', 0.5), connections: conns, repeats: n('BENCH_REPEATS', 3) })
    .then((r) => console.log(formatHttpAuthz(r, conns)))
    .catch((err: unknown) => {
      console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    });
}
