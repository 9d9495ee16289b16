/**
 * An independent measurement of the same ratios the bench reports, shaped like a person would take
 * it by hand: plain h2load runs (their own concurrency, none of the bench's warm-up passes, CPU
 * sampling or best-of selection) against the service and the baseline answering the same request,
 * alternated service/baseline so both see the same foreign load, the ratio being the median of the
 * pairs' ratios. If the bench and this disagree, one of them is measuring something else.
 */
import { runH2load } from './h2load';

export interface CrossCheckPath {
  readonly name: string;
  readonly servicePort: number;
  readonly baselinePort: number;
  readonly frameFile: string;
}

export interface CrossCheckResult {
  readonly name: string;
  readonly pairs: ReadonlyArray<{ service: number; baseline: number }>;
  /** Median over pairs of service req/s ÷ baseline req/s. */
  readonly ratio: number;
  /** The h2load command of one service run, to repeat it by hand. */
  readonly command: string;
}

export interface CrossCheckSpec {
  readonly pairs: number;
  readonly seconds: number;
  readonly connections: number;
  readonly streams: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export function h2loadCommand(spec: CrossCheckSpec, port: number, frameFile: string): string {
  return `h2load -c ${spec.connections} -m ${spec.streams} -t 1 -D ${Math.round(spec.seconds * 1000)}ms --warm-up-time 500ms -d ${frameFile} -H 'content-type: application/grpc' -H 'te: trailers' http://127.0.0.1:${port}/envoy.service.auth.v3.Authorization/Check`;
}

/** `idle` is awaited before every run (the bench waits for the server core to go quiet). */
export async function crossCheck(paths: readonly CrossCheckPath[], spec: CrossCheckSpec, idle: () => Promise<void> = async () => undefined): Promise<CrossCheckResult[]> {
  const run = async (port: number, frameFile: string): Promise<number> =>
    (await idle(), await runH2load({ port, frameFile, seconds: spec.seconds, warmupSeconds: 0.5, connections: spec.connections, streams: spec.streams })).rps;
  const out: CrossCheckResult[] = [];
  for (const p of paths) {
    const pairs: Array<{ service: number; baseline: number }> = [];
    for (let i = 0; i < spec.pairs; i++) {
      // Alternate which goes first, so a trend in the foreign load favours neither.
      const first = i % 2 === 0 ? 'service' : 'baseline';
      const a = await run(first === 'service' ? p.servicePort : p.baselinePort, p.frameFile);
      const b = await run(first === 'service' ? p.baselinePort : p.servicePort, p.frameFile);
      pairs.push(first === 'service' ? { service: a, baseline: b } : { service: b, baseline: a });
    }
    out.push({ name: p.name, pairs, ratio: median(pairs.map((x) => x.service / x.baseline)), command: h2loadCommand(spec, p.servicePort, p.frameFile) });
  }
  return out;
}

/**
 * Service and baseline both pinned to the server core and loaded at the same time, each by its own
 * h2load: the scheduler gives each half the core, so their completed calls stand in the inverse
 * ratio of their CPU per call (what throughput is, for a CPU-bound server), and a slow moment of the
 * machine (these VMs have many) hits both in the same instant. Sequential pairs move by ±20 %
 * between runs here; these by a few %. Ratio per round: service completed ÷ baseline completed.
 */
export async function sameCore(paths: readonly CrossCheckPath[], spec: CrossCheckSpec, idle: () => Promise<void> = async () => undefined): Promise<CrossCheckResult[]> {
  const out: CrossCheckResult[] = [];
  for (const p of paths) {
    const pairs: Array<{ service: number; baseline: number }> = [];
    for (let i = 0; i < spec.pairs; i++) {
      await idle();
      const run = (port: number) => runH2load({ port, frameFile: p.frameFile, seconds: spec.seconds, warmupSeconds: 0.5, connections: spec.connections, streams: spec.streams });
      const [s, b] = await Promise.all([run(p.servicePort), run(p.baselinePort)]);
      pairs.push({ service: s.completed, baseline: b.completed });
    }
    out.push({ name: p.name, pairs, ratio: median(pairs.map((x) => x.service / x.baseline)), command: h2loadCommand(spec, p.servicePort, p.frameFile) });
  }
  return out;
}

/** Bench ratio (median of its pairs) next to the independent one, per path. */
export function formatCrossCheck(results: readonly CrossCheckResult[], benchRatio: (name: string) => number | undefined, spec: CrossCheckSpec, same: readonly CrossCheckResult[] = [], sameSpec?: CrossCheckSpec): string {
  const lines = [
    `independent h2load check: ${spec.pairs} service/baseline pairs of ${spec.seconds}s at ${spec.connections}x${spec.streams} per path, median of the pairs' ratios`,
    ...(sameSpec && same.length ? [`same core: ${sameSpec.pairs} runs of ${sameSpec.seconds}s, a fresh service and baseline per path (same warm-up) loaded at once on the server core, median of completed-call ratios (crosscheck.ts sameCore)`] : []),
    `  ${'path'.padEnd(22)}  bench x base  h2load x base  same core  pairs (service/baseline req/s)`,
  ];
  for (const r of results) {
    const b = benchRatio(r.name);
    const sc = same.find((x) => x.name === r.name);
    const pairs = r.pairs.map((x) => `${Math.round(x.service)}/${Math.round(x.baseline)}`).join(' ');
    lines.push(`  ${r.name.padEnd(22)}  ${(b === undefined ? '-' : b.toFixed(2)).padStart(12)}  ${r.ratio.toFixed(2).padStart(13)}  ${(sc ? sc.ratio.toFixed(2) : '-').padStart(9)}  ${pairs}`);
  }
  if (results[0]) lines.push(`  e.g. ${results[0].command}`);
  return lines.join('\n');
}
