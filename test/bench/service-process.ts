/**
 * Child processes of the bench: the service under test (`node dist/src/main.js serve`) and the
 * baseline server, each pinned to the server core, logging to a file (so nobody spends CPU reading
 * their output while the clock runs). Every child is registered and killed on exit, error or signal.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { baseEnv } from '../helpers/spawn';
import type { BaselineDecode } from './baseline-server';

/** dist/src/main.js and dist/test/bench/baseline-server.js, seen from dist/test/bench. */
const MAIN_JS = resolve(__dirname, '..', '..', 'src', 'main.js');
const BASELINE_JS = resolve(__dirname, 'baseline-server.js');

/**
 * V8 flags given to the service and the baseline alike. V8 sizes the young generation adaptively
 * (1 MB semi-spaces growing to 16 MB on this machine, shrunk again by its memory reducer when a
 * process idles), and the two servers' generations stood at different sizes from one run to the
 * next: the baseline, which allocates more per call (protobufjs objects), went from 0.85 to 1.2 of
 * the service's CPU per call between 1 MB and 32 MB. Pinning both to one size removed most of the
 * bench's run-to-run swing. BENCH_SEMI_SPACE_MB: 1 (V8's floor, the steadiest: the same-core ratio of
 * a path moved by ±0.02 over four runs); 16 (its ceiling here, where a loaded process ends up: the
 * ratios scatter by ±0.15 again); 0 (adaptive, as `npm start` runs). BENCH_NODE_FLAGS adds more.
 */
function benchNodeFlags(env: NodeJS.ProcessEnv): string[] {
  const raw = env['BENCH_SEMI_SPACE_MB'] ?? '1';
  const mb = Number(raw);
  if (!Number.isInteger(mb) || mb < 0 || mb > 256) throw new Error(`BENCH_SEMI_SPACE_MB must be an integer from 0 to 256 (0: V8's adaptive sizing), not ${JSON.stringify(raw)}`);
  const extra = (env['BENCH_NODE_FLAGS'] ?? '').split(/\s+/).filter(Boolean);
  return [...(mb === 0 ? [] : [`--min-semi-space-size=${mb}`, `--max-semi-space-size=${mb}`]), ...extra];
}
const NODE_FLAGS = benchNodeFlags(process.env);

export const SERVER_CORE = 0;
export const LOAD_CORE = 1;

let tasksetOk: boolean | undefined;
/** taskset exists and there are at least two cores to separate server and load. */
export function canPin(): boolean {
  tasksetOk ??= cpus().length >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
  return tasksetOk;
}

/** [command, args] for `cmd args`, under `taskset -c core` when pinning is possible. */
export function pinned(core: number, cmd: string, args: string[]): [string, string[]] {
  return canPin() ? ['taskset', ['-c', String(core), cmd, ...args]] : [cmd, args];
}

const children = new Set<ChildProcess>();
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
/** SIGKILL every child still running (last resort; stop() is the polite path). */
export function killAll(): void {
  for (const c of children) c.kill('SIGKILL');
}
process.once('exit', killAll);

export interface Proc {
  readonly pid: number;
  readonly grpcPort: number;
  readonly httpPort: number | undefined;
  readonly logPath: string;
  /** SIGTERM, then SIGKILL after graceMs; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function launch(label: string, nodeArgs: string[], env: NodeJS.ProcessEnv, logPath: string, ready: (log: string) => { grpc: number; http?: number } | undefined): Promise<Proc> {
  const fd = openSync(logPath, 'w');
  const [cmd, args] = pinned(SERVER_CORE, process.execPath, nodeArgs);
  const child = track(spawn(cmd, args, { env, stdio: ['ignore', fd, fd] }));
  closeSync(fd);
  let exited = false;
  const gone = new Promise<void>((r) => child.once('exit', () => ((exited = true), r())));
  const stop = async (graceMs = 8000): Promise<void> => {
    if (exited) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(t);
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    const log = readFileSync(logPath, 'utf8');
    const ports = ready(log);
    if (ports) return { pid: child.pid!, grpcPort: ports.grpc, httpPort: ports.http, logPath, stop };
    if (exited || Date.now() > deadline) {
      await stop(0);
      throw new Error(`${label} ${exited ? 'exited' : 'not ready within 30 s'}; log ${logPath}:\n${log.slice(-2000)}`);
    }
    await sleep(50);
  }
}

/**
 * The service as operators run it. `cpuProfDir` adds `--cpu-prof` (written when it exits on SIGTERM).
 * LOG_LEVEL defaults to info, the production default: each deny writes one log line.
 */
export function startService(env: Record<string, string>, logDir: string, name: string, cpuProfDir?: string): Promise<Proc> {
  const nodeArgs = [...NODE_FLAGS, ...(cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`, `--cpu-prof-name=${name}.cpuprofile`] : []), MAIN_JS, 'serve'];
  const full = baseEnv(logDir, { ORCHEO_AUTH_GRPC_ADDR: '127.0.0.1:0', ORCHEO_AUTH_HTTP_ADDR: '127.0.0.1:0', ORCHEO_AUTH_HTTP_AUTHZ_ADDR: '127.0.0.1:0', LOG_LEVEL: 'info', ...env });
  return launch(`service (${name})`, nodeArgs, full, join(logDir, `${name}.log`), (log) => {
    for (const line of log.split('\n')) {
      if (!line.includes('orcheo-authz serving')) continue;
      try {
        const j = JSON.parse(line) as { grpc: string; http: string };
        return { grpc: Number(j.grpc.split(':').pop()), http: Number(j.http.split(':').pop()) };
      } catch {
        /* partial line: poll again */
      }
    }
    return undefined;
  });
}

/**
 * The bare server; with `repliesFile` it answers with the service's own encoded replies, reading the
 * request as `decode` says (baseline-server.ts; decompose.ts uses the other two).
 */
export function startBaselineProcess(logDir: string, name = 'baseline', repliesFile?: string, decode: BaselineDecode = 'protobufjs'): Promise<Proc> {
  const env = baseEnv(logDir, { BENCH_BASELINE_DECODE: decode, ...(repliesFile ? { BENCH_BASELINE_REPLIES: repliesFile } : {}) });
  return launch(`${name} server`, [...NODE_FLAGS, BASELINE_JS], env, join(logDir, `${name}.log`), (log) => {
    const m = /\{"baseline":"ready","port":(\d+)\}/.exec(log);
    return m ? { grpc: Number(m[1]) } : undefined;
  });
}

/** orcheo_authz_checks_total by `decision/code`, from the service's /metrics. */
export async function checkCounters(httpPort: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^orcheo_authz_checks_total\{decision="(\w+)",code="([^"]+)"\} (\d+)/gm)) out.set(`${m[1]}/${m[2]}`, Number(m[3]));
  return out;
}

/** 1 when the limiter's active backend (orcheo_authz_ratelimit_backend) is `backend`. */
export async function limiterBackend(httpPort: number): Promise<string | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  return /^orcheo_authz_ratelimit_backend\{backend="(\w+)"\} 1$/m.exec(text)?.[1];
}
