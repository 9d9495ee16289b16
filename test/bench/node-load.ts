/**
 * The fallback load generator (and the one for scenarios where every request must differ, which
 * h2load cannot do): a closed loop over node:http2 — not @grpc/grpc-js, whose client costs about
 * twice the server's CPU per call — sending pre-encoded gRPC frames, cycling through a frames file
 * in order. It runs in its own process, pinned to the load core:
 *
 *   node dist/test/bench/node-load.js '<LoadSpec JSON>'   → prints one LoadResult JSON line
 *
 * Even so a Node client spends more per call than h2load, so throughput it reports may be limited
 * by the generator; run.ts compares it only with the baseline measured by this same generator.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type ClientHttp2Session } from 'node:http2';
import { CHECK_PATH } from './frames';
import { percentile } from './h2load';
import { LOAD_CORE, pinned, track } from './service-process';

/** Printed when the warm-up ends, so the caller can sample the server's CPU time then. */
const MEASURE_START = 'measure-start';

export interface LoadSpec {
  readonly port: number;
  readonly connections: number;
  /** Requests in flight per connection. */
  readonly streams: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
}

export interface LoadResult {
  readonly generator: 'h2load' | 'node';
  readonly rps: number;
  /** Requests completed inside the measured window. */
  readonly completed: number;
  readonly succeeded: number;
  readonly meanUs: number;
  readonly p50us: number;
  readonly p99us: number;
}

/** Splits a file of concatenated gRPC frames (5-byte prefix + message, repeated). */
export function readFrames(path: string): Buffer[] {
  const all = readFileSync(path);
  const frames: Buffer[] = [];
  for (let at = 0; at < all.length; ) {
    const end = at + 5 + all.readUInt32BE(at + 1);
    frames.push(all.subarray(at, end));
    at = end;
  }
  return frames;
}

async function generate(spec: LoadSpec & { framesFile: string }): Promise<LoadResult> {
  const frames = readFrames(spec.framesFile);
  const headers = { ':method': 'POST', ':path': CHECK_PATH, 'content-type': 'application/grpc', te: 'trailers' };
  const sessions: ClientHttp2Session[] = [];
  for (let i = 0; i < spec.connections; i++) {
    const s = connect(`http://127.0.0.1:${spec.port}`);
    await new Promise<void>((res, rej) => s.once('connect', () => res()).once('error', rej));
    sessions.push(s);
  }
  const start = performance.now();
  const t0 = start + spec.warmupSeconds * 1000;
  setTimeout(() => process.stdout.write(`${MEASURE_START}\n`), t0 - start);
  const t1 = t0 + spec.seconds * 1000;
  let next = 0;
  let failed = 0;
  let lat = new Float64Array(1 << 16);
  let n = 0;

  const one = (s: ClientHttp2Session): Promise<void> =>
    new Promise((resolve) => {
      const began = performance.now();
      const req = s.request(headers);
      let status: unknown;
      req.on('response', (h) => (status = h['grpc-status']));
      req.on('trailers', (t) => (status = t['grpc-status']));
      req.on('data', () => undefined);
      req.once('error', () => (status = 'error'));
      req.once('close', () => {
        const ended = performance.now();
        if (ended >= t0 && ended <= t1) {
          if (status !== '0') failed++;
          if (n === lat.length) {
            const grown = new Float64Array(lat.length * 2);
            grown.set(lat);
            lat = grown;
          }
          lat[n++] = (ended - began) * 1000;
        }
        resolve();
      });
      req.end(frames[next++ % frames.length]);
    });

  const worker = async (s: ClientHttp2Session): Promise<void> => {
    while (performance.now() < t1) await one(s);
  };
  await Promise.all(sessions.flatMap((s) => Array.from({ length: spec.streams }, () => worker(s))));
  for (const s of sessions) s.close();
  const sorted = lat.subarray(0, n).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  return { generator: 'node', rps: n / spec.seconds, completed: n, succeeded: n - failed, meanUs: sum / n, p50us: percentile(sorted, 0.5), p99us: percentile(sorted, 0.99) };
}

/** Runs the generator in its own process on the load core and returns its result. */
export function runNodeLoad(spec: LoadSpec & { framesFile: string }, onMeasureStart?: () => void): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const [cmd, args] = pinned(LOAD_CORE, process.execPath, [__filename, JSON.stringify(spec)]);
    const child = track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      const had = out.includes(MEASURE_START);
      out += b.toString('utf8');
      if (!had && out.includes(MEASURE_START)) onMeasureStart?.();
    });
    child.stderr!.on('data', (b: Buffer) => (out += b.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), (spec.seconds + spec.warmupSeconds + 30) * 1000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('{"generator"'));
      if (code === 0 && line) resolve(JSON.parse(line) as LoadResult);
      else reject(new Error(`node load generator exited with ${code}:\n${out}`));
    });
  });
}

if (require.main === module && !process.env['NODE_TEST_CONTEXT']) {
  generate(JSON.parse(process.argv[2] ?? '{}') as LoadSpec & { framesFile: string }).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (err: unknown) => {
      process.stderr.write(`node-load failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
