/**
 * h2load (nghttp2-client) as the load generator: a C client that costs far less per call than any
 * Node client, so the server core, not the generator, is what saturates. gRPC over h2load: POST the
 * same length-prefixed CheckRequest frame on every stream with the gRPC headers. h2load can only
 * send one body, so scenarios that need a different request each time use node-load.ts instead.
 *
 * HTTP status is all h2load can check (gRPC answers 200 and puts its status in trailers): run.ts
 * checks the decision separately, before timing, and compares the service's decision counters after.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { CHECK_PATH } from './frames';
import { LOAD_CORE, pinned, track } from './service-process';
import type { LoadResult, LoadSpec } from './node-load';

/** h2load prints this (unbuffered) when the warm-up ends and the measured window begins. */
const MEASURE_START = 'Main benchmark duration is started';

let available: boolean | undefined;
export function h2loadAvailable(): boolean {
  available ??= spawnSync('h2load', ['--version']).status === 0;
  return available;
}

export function h2loadVersion(): string {
  return spawnSync('h2load', ['--version'], { encoding: 'utf8' }).stdout.trim();
}

/** p-th percentile (0..1) of an ascending array, nearest rank. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

function run(cmd: string, args: string[], timeoutMs: number, onStart?: () => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      const had = out.includes(MEASURE_START);
      out += b.toString('utf8');
      if (!had && out.includes(MEASURE_START)) onStart?.();
    });
    child.stderr!.on('data', (b: Buffer) => (out += b.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`h2load exited with ${code}:\n${out}`));
    });
  });
}

/**
 * One timed h2load run against 127.0.0.1:port. `spec.frameFile` holds exactly one frame. With
 * `spec.logFile`, per-request latencies come from h2load's --log-file (it prints no percentiles).
 */
export async function runH2load(spec: LoadSpec & { frameFile: string; logFile?: string; onMeasureStart?: () => void }): Promise<LoadResult> {
  const args = ['-c', String(spec.connections), '-m', String(spec.streams), '-t', '1', '-D', `${Math.round(spec.seconds * 1000)}ms`, '--warm-up-time', `${Math.round(spec.warmupSeconds * 1000)}ms`];
  args.push('-d', spec.frameFile, '-H', 'content-type: application/grpc', '-H', 'te: trailers');
  if (spec.logFile) args.push(`--log-file=${spec.logFile}`);
  args.push(`http://127.0.0.1:${spec.port}${CHECK_PATH}`);
  const [cmd, full] = pinned(LOAD_CORE, 'h2load', args);
  const out = await run(cmd, full, (spec.seconds + spec.warmupSeconds + 30) * 1000, spec.onMeasureStart);

  const num = (re: RegExp, what: string): number => {
    const m = re.exec(out);
    if (!m) throw new Error(`h2load output has no ${what}:\n${out}`);
    return Number(m[1]);
  };
  const rps = num(/finished in [\d.]+\w+, ([\d.]+) req\/s/, 'req/s');
  const done = num(/requests: \d+ total, \d+ started, (\d+) done/, 'done count');
  const succeeded = num(/requests: .* (\d+) succeeded/, 'succeeded count');
  const errors = num(/requests: .* (\d+) failed/, 'failed count') + num(/requests: .* (\d+) errored/, 'errored count');
  const timeouts = num(/requests: .* (\d+) timeout/, 'timeout count');
  const ok2xx = num(/status codes: (\d+) 2xx/, '2xx count');
  const other = num(/status codes: \d+ 2xx, (\d+) 3xx/, '3xx count') + num(/(\d+) 4xx/, '4xx count') + num(/(\d+) 5xx/, '5xx count');
  // Status counts include calls cut off at the end of the window, so they need not equal `done`.
  if (errors + timeouts + other > 0 || ok2xx === 0) throw new Error(`h2load: ${errors} failed/errored, ${timeouts} timeouts, ${other} non-2xx, ${ok2xx} 2xx:\n${out}`);

  let p50 = NaN;
  let p99 = NaN;
  const mean = /time for request:\s+\S+\s+\S+\s+(\S+)/.exec(out)?.[1];
  if (spec.logFile) {
    const lines = readFileSync(spec.logFile, 'utf8').split('\n');
    const lat = new Float64Array(lines.length);
    let n = 0;
    for (const line of lines) {
      const cols = line.split('\t');
      if (cols.length >= 3 && cols[1] === '200') lat[n++] = Number(cols[2]);
    }
    const sorted = lat.subarray(0, n).sort();
    p50 = percentile(sorted, 0.5);
    p99 = percentile(sorted, 0.99);
    rmSync(spec.logFile, { force: true });
  }
  return { generator: 'h2load', rps, completed: done, succeeded, meanUs: mean ? parseDuration(mean) : NaN, p50us: p50, p99us: p99 };
}

/** h2load durations: "152us", "1.23ms", "2.01s" → µs. */
function parseDuration(s: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(s);
  if (!m) return NaN;
  return Number(m[1]) * (m[2] === 'us' ? 1 : m[2] === 'ms' ? 1000 : 1e6);
}
