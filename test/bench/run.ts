/**
 * `npm run bench`: Check throughput and latency of the service (its own process, pinned to core 0)
 * against a bare grpc-js baseline, driven by a load generator in another process (core 1): h2load
 * when installed, else node-load.ts. Every scenario is checked for the right decision first, then
 * timed BENCH_REPEATS times, each time right next to its baseline (so a burst of foreign load hits
 * both alike); the table shows the best repeat's figures and the medians of the pairs' ratios. See
 * README "Benchmark". Environment knobs:
 *   BENCH_SECONDS (1.5) BENCH_WARMUP (0.5) BENCH_LATENCY_SECONDS (1.2: the 1 x 1 run) BENCH_REPEATS (5)
 *   BENCH_PREWARM (1: untimed pass per scenario) BENCH_CONNECTIONS (8) BENCH_STREAMS (16)
 *   BENCH_CROSSCHECK_PAIRS (5: independent h2load pairs of 1 s per path, crosscheck.ts; 0 skips it)
 *   BENCH_SAME_CORE_RUNS (3: service and baseline loaded at once on one core, 3 s each; 0 skips it)
 *   BENCH_JWT_TOKENS (20000, > the 10 000-entry JWT cache) BENCH_GENERATOR (h2load|node)
 *   BENCH_ONLY=<regex> (scenarios whose name matches, plus the baselines) BENCH_KEEP=1 (keep logs)
 *   BENCH_CPU_PROF=<dir> (run the service under --cpu-prof and print its hotspots)
 *   BENCH_SEMI_SPACE_MB (1: V8's young generation pinned, service and baselines alike; 0: adaptive)
 *   BENCH_NODE_FLAGS (more node/V8 flags for the service and the baselines alike)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { assertReply, checkFrame, jwtPayload, rawCheck, signHs256, type Expectation } from './frames';
import { crossCheck, formatCrossCheck, sameCore, type CrossCheckResult, type CrossCheckSpec } from './crosscheck';
import { BOOTSTRAP_TOKEN, describeStore, JWT_SECRET, liveTeardowns, SERVICE_TOKEN_ID, setupFixtures, type Fixtures } from './fixtures';
import { h2loadAvailable, h2loadVersion, runH2load } from './h2load';
import { benchHttpAuthz, formatHttpAuthz } from './http-authz';
import { runNodeLoad, type LoadResult } from './node-load';
import { printHotspots } from './profile';
import { benchAssertions, formatAssertionBench } from './assertion';
import { formatPathRatios, formatTable, machine, ratios, summarize, writeJson, type PairRatio, type Repeat, type ScenarioResult, type Targets } from './report';
import { canPin, checkCounters, killAll, limiterBackend, startBaselineProcess, startService, type Proc } from './service-process';

const num = (name: string, def: number): number => {
  const v = Number(process.env[name] ?? def);
  if (!(Number.isFinite(v) && v > 0)) throw new Error(`${name} must be a positive number`);
  return v;
};
const SECONDS = num('BENCH_SECONDS', 1.5);
const WARMUP = num('BENCH_WARMUP', 0.5);
const LAT_SECONDS = num('BENCH_LATENCY_SECONDS', 1.2);
const REPEATS = Math.round(num('BENCH_REPEATS', 5));
const PREWARM = num('BENCH_PREWARM', 1);
const CROSSCHECK_PAIRS = Math.round(Number(process.env['BENCH_CROSSCHECK_PAIRS'] ?? 5));
const SAME_CORE_RUNS = Math.round(Number(process.env['BENCH_SAME_CORE_RUNS'] ?? 3));
const CONNS = num('BENCH_CONNECTIONS', 8);
const STREAMS = num('BENCH_STREAMS', 16);
const JWT_TOKENS = num('BENCH_JWT_TOKENS', 20_000);
const USE_H2LOAD = process.env['BENCH_GENERATOR'] !== 'node' && h2loadAvailable();
const CPU_PROF = process.env['BENCH_CPU_PROF'];
const ONLY = process.env['BENCH_ONLY'] ? new RegExp(process.env['BENCH_ONLY'], 'i') : undefined;
/** Issue 13's targets for the four main paths: throughput and p99 at 1 x 1 relative to the baseline. */
const PATH_TARGETS: Targets = { throughputRatio: 0.9, p99Ratio: 1.2 };
/** High enough never to block: the scenario measures the limiter's per-call cost, not its 429s. */
const LIMITS = { ip: 1_000_000, identity: 1_000_000 };

interface Scenario {
  readonly name: string;
  readonly proc: Proc;
  readonly frames: string;
  /** A frames file of many requests: only the node generator can send it. */
  readonly many?: boolean;
  /** The decision the correctness probe must get, and the request it sends. */
  readonly expect: Expectation;
  readonly probe: Buffer;
  /** The decision counter (decision/code) the service must increment for every timed call. */
  readonly counter?: string;
  readonly targets: Targets;
  readonly baseline: string;
}

/** utime + stime of a process (all threads), in µs. */
function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100; // USER_HZ is 100 on Linux
}

/** Runs `load`, sampling the server's CPU time from the generator's end of warm-up to the end of the run. */
async function withCpu(pid: number, load: (onMeasureStart: () => void) => Promise<LoadResult>): Promise<{ r: LoadResult; cpuUs: number }> {
  let start = NaN;
  const r = await load(() => (start = cpuMicros(pid)));
  return { r, cpuUs: cpuMicros(pid) - start };
}

/**
 * Waits (at most 2 s) until the server-core processes are idle: after a run a Node process keeps
 * garbage-collecting for a while on the same core, which made whichever scenario came next look
 * slower (the first baseline row of a round was regularly ~30 % below the last one).
 */
async function settle(pids: readonly number[]): Promise<void> {
  const total = (): number => pids.reduce((sum, pid) => sum + cpuMicros(pid), 0);
  const deadline = Date.now() + 2000;
  let last = total();
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    const now = total();
    if (now - last < 5000) return; // < 5 ms of CPU in 100 ms, all processes together
    last = now;
  }
}

const isBaseline = (s: Scenario): boolean => s.name.startsWith('baseline');

async function timeOnce(s: Scenario, serverPids: readonly number[]): Promise<Repeat> {
  await settle(serverPids);
  const spec = { port: s.proc.grpcPort, seconds: SECONDS, warmupSeconds: WARMUP };
  const h2 = USE_H2LOAD && !s.many;
  const before = s.proc.httpPort ? await checkCounters(s.proc.httpPort) : undefined;
  const thr = await withCpu(s.proc.pid, (onMeasureStart) =>
    h2
      ? runH2load({ ...spec, connections: CONNS, streams: STREAMS, frameFile: s.frames, onMeasureStart })
      : runNodeLoad({ ...spec, connections: CONNS, streams: STREAMS, framesFile: s.frames }, onMeasureStart),
  );
  const lat = h2
    ? await runH2load({ ...spec, seconds: LAT_SECONDS, warmupSeconds: 0.3, connections: 1, streams: 1, frameFile: s.frames, logFile: `${s.frames}.h2load.log` })
    : await runNodeLoad({ ...spec, seconds: LAT_SECONDS, warmupSeconds: 0.3, connections: 1, streams: 1, framesFile: s.frames });
  for (const r of [thr.r, lat]) if (r.succeeded !== r.completed) throw new Error(`${s.name}: ${r.completed - r.succeeded} calls without grpc-status 0`);
  if (before && s.counter) {
    // Every call of both runs (warm-up included) must have been the decision this scenario claims.
    const after = await checkCounters(s.proc.httpPort!);
    const timed = thr.r.completed + lat.completed;
    for (const key of new Set([...before.keys(), ...after.keys()])) {
      const delta = (after.get(key) ?? 0) - (before.get(key) ?? 0);
      if (key === s.counter ? delta < timed : delta !== 0) throw new Error(`${s.name}: service counted ${delta} × ${key} for ${timed} timed calls (expected ${s.counter})`);
    }
  }
  return { generator: thr.r.generator, rps: thr.r.rps, cpuUsPerCall: thr.cpuUs / thr.r.completed, p50us: lat.p50us, p99us: lat.p99us, meanUsLoaded: thr.r.meanUs };
}

/**
 * The same-core check on a fresh service and a fresh baseline per path, started for it and given
 * the same warm-up: the processes of the timed rows carry minutes of uneven history by then (a
 * service process that has served the bench read 0.71 where a fresh one read 0.83-0.86, same core,
 * same request), so this column depends on nothing the rest of the bench did.
 */
async function freshSameCore(f: Fixtures, paths: readonly Scenario[], envOf: (s: Scenario) => Record<string, string>, repliesFile: string, spec: CrossCheckSpec, procs: Set<Proc>): Promise<CrossCheckResult[]> {
  const out: CrossCheckResult[] = [];
  for (const [i, s] of paths.entries()) {
    const pair = [await startService(envOf(s), f.dir, `same-core-${i}`), await startBaselineProcess(f.dir, `same-core-baseline-${i}`, repliesFile)] as const;
    for (const p of pair) procs.add(p);
    try {
      assertReply(`${s.name} (fresh)`, await rawCheck(pair[0].grpcPort, s.probe), s.expect);
      for (const p of pair) await runH2load({ port: p.grpcPort, seconds: PREWARM, warmupSeconds: 0.2, connections: spec.connections, streams: spec.streams, frameFile: s.frames });
      out.push(...(await sameCore([{ name: s.name, servicePort: pair[0].grpcPort, baselinePort: pair[1].grpcPort, frameFile: s.frames }], spec, () => settle(pair.map((p) => p.pid)))));
    } finally {
      for (const p of pair) {
        await p.stop();
        procs.delete(p);
      }
    }
  }
  return out;
}

async function main(f: Fixtures, procs: Set<Proc>): Promise<void> {
  const write = (name: string, ...frames: Buffer[]): string => {
    const p = join(f.dir, name);
    writeFileSync(p, Buffer.concat(frames));
    return p;
  };
  const svc = checkFrame(f.serviceToken);
  const jwtToken = signHs256(JWT_SECRET, jwtPayload('bench-user', 'bench-jti'));
  const jwt = checkFrame(jwtToken);
  const deny = checkFrame(undefined);
  const boot = checkFrame(BOOTSTRAP_TOKEN);
  const unique = Array.from({ length: JWT_TOKENS }, (_, i) => checkFrame(signHs256(JWT_SECRET, jwtPayload(`user-${i}`, `jti-${i}`)), i));
  const files = { svc: write('service.bin', svc), jwt: write('jwt.bin', jwt), unique: write('jwt-unique.bin', ...unique), deny: write('deny.bin', deny), boot: write('bootstrap.bin', boot) };

  const loadBefore = loadavg()[0]!;
  if (loadBefore > 0.5) process.stderr.write(`bench: WARNING load average ${loadBefore.toFixed(2)} before start: other processes compete for the cores\n`);
  process.stderr.write(`bench: ${REPEATS} x (${SECONDS}s + ${WARMUP}s warm-up) per scenario and mode, generator ${USE_H2LOAD ? 'h2load' : 'node'}, store ${describeStore(f)}, redis ${f.redis ? 'yes' : 'no'}\n`);
  const up = async (p: Promise<Proc>): Promise<Proc> => {
    const proc = await p;
    procs.add(proc);
    return proc;
  };
  // All run at once on the server core; only the one under load uses it.
  const service = await up(startService(f.baseEnv, f.dir, 'service', CPU_PROF));
  const limited = await up(startService({ ...f.baseEnv, ...f.limitsEnv }, f.dir, 'limits', CPU_PROF));
  const bootstrapEnv = { ...f.baseEnv, ...f.bootstrapEnv };
  const bootstrap = await up(startService(bootstrapEnv, f.dir, 'bootstrap', CPU_PROF));
  // The unique-JWT row fills a verified-token cache (10 000 entries, ~21 MB of heap); on the
  // process of the other paths that alone cost them ~6 % (same-core, young generation at 1 MB:
  // a larger live heap makes every old-generation collection dearer), so it has its own.
  const uniqueJwt = await up(startService(f.baseEnv, f.dir, 'unique-jwt', CPU_PROF));
  const backend = await limiterBackend(limited.httpPort!);
  if (backend !== (f.redis ? 'redis' : 'memory')) throw new Error(`limits run: limiter backend is ${backend}, expected ${f.redis ? 'redis' : 'memory'}`);

  // The baseline answers every request with the bytes the service answered for it: a ratio then
  // prices the decision, not the answer's size (see baseline-server.ts).
  const uniqueProbe = checkFrame(signHs256(JWT_SECRET, jwtPayload('probe-user', 'probe-jti')));
  const byAuthorization: Record<string, string> = {};
  for (const [auth, frame, proc] of [[`Bearer ${f.serviceToken}`, svc, service], [`Bearer ${jwtToken}`, jwt, service], ['', deny, service], [`Bearer ${BOOTSTRAP_TOKEN}`, boot, bootstrap]] as const) {
    byAuthorization[auth] = (await rawCheck(proc.grpcPort, frame)).bytes.toString('base64');
  }
  const repliesFile = write('baseline-replies.json', Buffer.from(JSON.stringify({ byAuthorization, fallback: (await rawCheck(uniqueJwt.grpcPort, uniqueProbe)).bytes.toString('base64') })));
  const base = await up(startBaselineProcess(f.dir, 'baseline', repliesFile));
  // The bootstrap process gets a baseline of its own, loaded exactly when it is: a process that
  // idled while the others ran came back ~10 % slower for the next half minute (V8's memory
  // reducer shrinks an idle heap; both servers decay alike), and a baseline shared by every path
  // never idled, which is why bootstrap read 0.78 where, with the same history, it reads as the rest.
  const bootBase = await up(startBaselineProcess(f.dir, 'baseline-bootstrap', repliesFile));

  const allow = (subject: string): Expectation => ({ kind: 'allow', subject });
  const nodeBase = USE_H2LOAD ? 'baseline (node gen)' : 'baseline';
  const b = { targets: {}, expect: { kind: 'ok' } as Expectation };
  const all: Scenario[] = [
    // One baseline per request body: a JWT request is ~300 bytes larger to decode than a service-token
    // one, a deny request smaller, and each ratio must compare the same request bytes.
    { ...b, name: 'baseline', proc: base, frames: files.svc, probe: svc, baseline: 'baseline' },
    { ...b, name: 'baseline (JWT bytes)', proc: base, frames: files.jwt, probe: jwt, baseline: 'baseline (JWT bytes)' },
    { ...b, name: 'baseline (deny bytes)', proc: base, frames: files.deny, probe: deny, baseline: 'baseline (deny bytes)' },
    { ...b, name: 'baseline (bootstrap bytes)', proc: bootBase, frames: files.boot, probe: boot, baseline: 'baseline (bootstrap bytes)' },
    ...(USE_H2LOAD ? [{ ...b, name: nodeBase, proc: base, frames: files.unique, many: true, probe: svc, baseline: nodeBase }] : []),
    { name: 'service token allow', proc: service, frames: files.svc, expect: allow(SERVICE_TOKEN_ID), probe: svc, counter: 'allow/ok', targets: PATH_TARGETS, baseline: 'baseline' },
    { name: 'JWT allow, cached', proc: service, frames: files.jwt, expect: allow('bench-user'), probe: jwt, counter: 'allow/ok', targets: PATH_TARGETS, baseline: 'baseline (JWT bytes)' },
    // The probe token is not among the timed ones; those stay uncached (more than the cache holds, sent in order).
    { name: 'JWT allow, unique', proc: uniqueJwt, frames: files.unique, many: true, expect: allow('probe-user'), probe: uniqueProbe, counter: 'allow/ok', targets: {}, baseline: nodeBase },
    { name: 'deny (no token)', proc: service, frames: files.deny, expect: { kind: 'deny', status: 401, code: 'auth.missing_token' }, probe: deny, counter: 'deny/auth.missing_token', targets: PATH_TARGETS, baseline: 'baseline (deny bytes)' },
    { name: 'bootstrap allow', proc: bootstrap, frames: files.boot, expect: allow('bootstrap'), probe: boot, counter: 'allow/ok', targets: PATH_TARGETS, baseline: 'baseline (bootstrap bytes)' },
    { name: `limits on (${backend})`, proc: limited, frames: files.svc, expect: allow(SERVICE_TOKEN_ID), probe: svc, counter: 'allow/ok', targets: { throughputRatio: 0.75 }, baseline: 'baseline' },
  ];
  const plan = all.filter((s) => !ONLY || isBaseline(s) || ONLY.test(s.name));
  for (const s of plan) assertReply(s.name, await rawCheck(s.proc.grpcPort, s.probe), s.expect);

  // One untimed pass at full load: JIT, connection pools and caches settle before any figure counts.
  for (const s of plan) {
    const spec = { port: s.proc.grpcPort, seconds: PREWARM, warmupSeconds: 0.2, connections: CONNS, streams: STREAMS };
    await (USE_H2LOAD && !s.many ? runH2load({ ...spec, frameFile: s.frames }) : runNodeLoad({ ...spec, framesFile: s.frames }));
  }
  const reps = new Map<string, Repeat[]>(plan.map((s) => [s.name, []]));
  const pairs = new Map<string, PairRatio[]>(plan.map((s) => [s.name, []]));
  const byName = new Map(plan.map((s) => [s.name, s]));
  const serverPids = [...procs].map((p) => p.pid);
  const timed = async (i: number, s: Scenario): Promise<Repeat> => {
    const r = await timeOnce(s, serverPids);
    reps.get(s.name)!.push(r);
    process.stderr.write(`  [${i}/${REPEATS}] ${s.name}: ${Math.round(r.rps)} req/s, ${r.cpuUsPerCall.toFixed(1)} us CPU/call, p50 ${Math.round(r.p50us)} us, p99 ${Math.round(r.p99us)} us (${r.generator})\n`);
    return r;
  };
  // Each scenario is timed next to its baseline, the pair's order alternating between repeats (a
  // trend in foreign load then favours neither); its ratios are the medians of the pairs' ratios.
  for (let i = 1; i <= REPEATS; i++) {
    for (const s of plan.filter((x) => !isBaseline(x))) {
      const b = byName.get(s.baseline)!;
      const first = i % 2 ? b : s;
      const r1 = await timed(i, first);
      const r2 = await timed(i, first === b ? s : b);
      const [rb, rs] = first === b ? [r1, r2] : [r2, r1];
      pairs.get(s.name)!.push({ rps: rs.rps / rb.rps, cpuUsPerCall: rs.cpuUsPerCall / rb.cpuUsPerCall, p50us: rs.p50us / rb.p50us, p99us: rs.p99us / rb.p99us });
    }
  }
  const crossPaths = plan.filter((s) => !s.many && !isBaseline(s) && !s.name.startsWith('limits'));
  const crossSpec = { pairs: CROSSCHECK_PAIRS, seconds: 1, connections: 4, streams: 32 };
  const crossList = crossPaths.map((s) => ({ name: s.name, servicePort: s.proc.grpcPort, baselinePort: byName.get(s.baseline)!.proc.grpcPort, frameFile: s.frames }));
  const crossed = USE_H2LOAD && CROSSCHECK_PAIRS > 0 ? await crossCheck(crossList, crossSpec, () => settle(serverPids)) : [];
  const sameSpec = { pairs: SAME_CORE_RUNS, seconds: 3, connections: 4, streams: 32 };
  const same = USE_H2LOAD && canPin() && SAME_CORE_RUNS > 0 ? await freshSameCore(f, crossPaths, (s) => (s.proc === bootstrap ? bootstrapEnv : f.baseEnv), repliesFile, sameSpec, procs) : [];
  for (const p of [base, bootBase, service, uniqueJwt, limited, bootstrap]) {
    await p.stop();
    procs.delete(p);
  }
  const results: ScenarioResult[] = plan.filter((s) => reps.get(s.name)!.length).map((s) => summarize(s.name, s.baseline, s.targets, reps.get(s.name)!, pairs.get(s.name)!));

  const m = machine(canPin() ? 'server core 0, generator core 1 (taskset)' : 'not pinned (no taskset or a single core)', USE_H2LOAD ? `${h2loadVersion()}; unique-JWT rows: node:http2 generator` : `node:http2 generator (${h2loadAvailable() ? 'BENCH_GENERATOR=node' : 'h2load not installed'})`);
  console.log(`\norcheo-authz bench: ${m.cpu}, nproc ${m.nproc}, node ${m.node}; ${m.pinned}`);
  const loadAfter = loadavg()[0]!;
  console.log(`generator ${m.generator}; store ${describeStore(f)}; load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after`);
  // The run itself keeps ~2 runnable (server and generator); more means others took their cores.
  if (loadBefore > 1 || loadAfter > 3) console.log('WARNING: other processes competed for the cores during this run: its ratios are not to be trusted');
  console.log(`best of ${REPEATS} runs of ${SECONDS}s (after ${WARMUP}s warm-up): req/s and server CPU per call at ${CONNS} connections x ${STREAMS} streams; p50/p99 at 1 x 1 in flight (${LAT_SECONDS}s runs)`);
  console.log(`x base: median over the ${REPEATS} repeats of the ratio to the baseline run next to it (same request bytes, same generator; throughput: higher is better; CPU and latency: lower)\n`);
  console.log(formatTable(results, CONNS, STREAMS));
  console.log(`\n${formatPathRatios(results)}`);
  if (crossed.length) {
    const benchRatio = (name: string): number | undefined => {
      const r = results.find((x) => x.name === name);
      const b = r && results.find((x) => x.name === r.baseline);
      return r && b ? ratios(r, b).rps : undefined;
    };
    console.log(`\n${formatCrossCheck(crossed, benchRatio, crossSpec, same, sameSpec)}`);
  }
  const config = { seconds: SECONDS, warmupSeconds: WARMUP, latencySeconds: LAT_SECONDS, crossCheck: crossSpec, sameCore: sameSpec, repeats: REPEATS, connections: CONNS, streams: STREAMS, jwtTokens: JWT_TOKENS, store: f.store, redis: f.redis, limits: LIMITS };
  console.log(`\nresults: ${writeJson({ date: new Date().toISOString(), machine: m, config, loadAverage: { before: loadBefore, after: loadAfter }, results, crossCheck: crossed, sameCore: same })}`);
  if (CPU_PROF) printHotspots(CPU_PROF);
  if (!ONLY || ONLY.test('assertion')) console.log(`\n${formatAssertionBench(await benchAssertions())}`);
  // The HTTP authorization interface has its own bare node:http baseline (test/bench/http-authz.ts).
  if (!ONLY || ONLY.test('http authz')) console.log(`\n${formatHttpAuthz(await benchHttpAuthz({ seconds: SECONDS, warmupSeconds: WARMUP, connections: CONNS, repeats: REPEATS }), CONNS)}`);
}

if (process.env['NODE_TEST_CONTEXT']) {
  console.log('run.ts is the benchmark entry (npm run bench), not a test.');
} else {
  const procs = new Set<Proc>();
  const cleanup = async (): Promise<void> => {
    await Promise.all([...procs].map((p) => p.stop(3000).catch(() => undefined)));
    killAll();
    await Promise.all([...liveTeardowns].map((t) => t()));
  };
  let interrupted: string | undefined;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      interrupted = sig;
      process.stderr.write(`bench: ${sig}, stopping children and dropping the bench schema / Redis keys\n`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  setupFixtures(LIMITS)
    .then((f) => main(f, procs))
    .catch((err: unknown) => {
      if (!interrupted) console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    })
    .finally(() => cleanup());
}
