/**
 * The bench's output: one table (each figure also as a ratio to the baseline measured by the same
 * generator in the same run) and a JSON file under bench-results/ (gitignored).
 */
import { execSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, relative, resolve } from 'node:path';

export interface Targets {
  /** Minimum throughput as a fraction of the baseline's. */
  readonly throughputRatio?: number;
  /** Maximum p99 at 1 connection × 1 request in flight, µs. */
  readonly p99us?: number;
  /** Maximum p99 at 1 × 1 as a multiple of the baseline's. */
  readonly p99Ratio?: number;
}

/** One timed repeat of a scenario: a throughput run and a latency run. */
export interface Repeat {
  readonly generator: 'h2load' | 'node';
  readonly rps: number;
  /** Server process CPU time (user + system, all threads) per call during the throughput run. */
  readonly cpuUsPerCall: number;
  readonly p50us: number;
  readonly p99us: number;
  /** Mean latency under the throughput load (128 in flight). */
  readonly meanUsLoaded: number;
}

export interface Figures {
  readonly rps: number;
  readonly cpuUsPerCall: number;
  readonly p50us: number;
  readonly p99us: number;
}

/** One service run and the run of its baseline right next to it (same foreign load): the ratios. */
export interface PairRatio {
  readonly rps: number;
  readonly cpuUsPerCall: number;
  readonly p50us: number;
  readonly p99us: number;
}

export interface ScenarioResult {
  readonly name: string;
  /** Name of the baseline row this one is divided by (same generator). */
  readonly baseline: string;
  readonly generator: string;
  readonly targets: Targets;
  /** Per figure, the best repeat (max req/s, min CPU and latency): the least disturbed by foreign load. */
  readonly best: Figures;
  readonly median: Figures;
  readonly repeats: readonly Repeat[];
  /**
   * Per figure, the median over the repeats of this run ÷ its baseline's run in the same pair. The
   * ratios the table and targets use: a burst of foreign load hits both runs of a pair alike,
   * whereas dividing two best-ofs divides two lucky moments (see README "Benchmark").
   */
  readonly paired?: PairRatio;
  readonly pairs?: readonly PairRatio[];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export function summarize(name: string, baseline: string, targets: Targets, repeats: Repeat[], pairs: PairRatio[] = []): ScenarioResult {
  const col = (k: keyof Figures): number[] => repeats.map((r) => r[k]);
  const pcol = (k: keyof PairRatio): number => median(pairs.map((r) => r[k]));
  return {
    ...(pairs.length ? { paired: { rps: pcol('rps'), cpuUsPerCall: pcol('cpuUsPerCall'), p50us: pcol('p50us'), p99us: pcol('p99us') }, pairs } : {}),
    name,
    baseline,
    generator: repeats[0]?.generator ?? 'none',
    targets,
    best: { rps: Math.max(...col('rps')), cpuUsPerCall: Math.min(...col('cpuUsPerCall')), p50us: Math.min(...col('p50us')), p99us: Math.min(...col('p99us')) },
    median: { rps: median(col('rps')), cpuUsPerCall: median(col('cpuUsPerCall')), p50us: median(col('p50us')), p99us: median(col('p99us')) },
    repeats,
  };
}

export interface Machine {
  readonly nproc: number;
  readonly cpu: string;
  readonly node: string;
  readonly pinned: string;
  readonly generator: string;
}

export function machine(pinnedNote: string, generator: string): Machine {
  let nproc = cpus().length;
  try {
    nproc = Number(execSync('nproc', { encoding: 'utf8' }).trim()) || nproc;
  } catch {
    /* os.cpus() it is */
  }
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpu;
  } catch {
    /* not Linux */
  }
  return { nproc, cpu, node: process.version, pinned: pinnedNote, generator };
}

const fmt = (x: number, digits = 0): string => (Number.isFinite(x) ? x.toFixed(digits) : '-');
const fmtRatio = (q: number): string => (Number.isFinite(q) ? q.toFixed(2) : '-');

/** The ratios to the baseline: paired medians when the scenario was timed in pairs, else best ÷ best. */
export function ratios(r: ScenarioResult, base: ScenarioResult): PairRatio {
  if (r.paired) return r.paired;
  const x = r.best;
  const y = base.best;
  return { rps: x.rps / y.rps, cpuUsPerCall: x.cpuUsPerCall / y.cpuUsPerCall, p50us: x.p50us / y.p50us, p99us: x.p99us / y.p99us };
}

function verdict(r: ScenarioResult, base: ScenarioResult): string {
  const out: string[] = [];
  const t = r.targets;
  const q = ratios(r, base);
  if (t.throughputRatio !== undefined) out.push(`${q.rps >= t.throughputRatio ? 'ok' : 'MISS'} thr>=${t.throughputRatio.toFixed(2)}`);
  if (t.p99us !== undefined) out.push(`${r.best.p99us <= t.p99us ? 'ok' : 'MISS'} p99<=${t.p99us}`);
  if (t.p99Ratio !== undefined) out.push(`${q.p99us <= t.p99Ratio ? 'ok' : 'MISS'} p99<=${t.p99Ratio.toFixed(1)}x`);
  return out.join(', ');
}

export function formatTable(results: readonly ScenarioResult[], conns: number, streams: number): string {
  const byName = new Map(results.map((r) => [r.name, r]));
  const head = ['scenario', 'gen', `req/s ${conns}x${streams}`, 'x base', 'CPU us/call', 'x base', 'p50 us 1x1', 'x base', 'p99 us 1x1', 'x base', 'target'];
  const rows = results.map((r) => {
    const b = byName.get(r.baseline) ?? r;
    const x = r.best;
    const q = ratios(r, b);
    return [r.name, r.generator, fmt(x.rps), fmtRatio(q.rps), fmt(x.cpuUsPerCall, 1), fmtRatio(q.cpuUsPerCall), fmt(x.p50us), fmtRatio(q.p50us), fmt(x.p99us), fmtRatio(q.p99us), r === b ? '' : verdict(r, b)];
  });
  const left = new Set([0, 1, head.length - 1]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (left.has(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Writes bench-results/bench-<timestamp>.json at the package root; returns the path relative to cwd. */
export function writeJson(doc: Record<string, unknown>): string {
  const dir = resolve(__dirname, '..', '..', '..', 'bench-results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
  return relative(process.cwd(), file) || file;
}

/**
 * The comparisons the JWT and rate-limit issues ask for, against the service-token path (limits
 * off) rather than the bare baseline: cached and uncached JWT, and limits on.
 */
export function formatPathRatios(results: readonly ScenarioResult[]): string {
  const svc = results.find((r) => r.name === 'service token allow');
  if (!svc) return '';
  const lines = ['ratios to "service token allow" (limits off): throughput, server CPU per call'];
  for (const r of results) {
    if (r === svc || !/^(JWT allow|limits on)/.test(r.name)) continue;
    lines.push(`  ${r.name.padEnd(20)} ${(r.best.rps / svc.best.rps).toFixed(2)}x req/s  ${(r.best.cpuUsPerCall / svc.best.cpuUsPerCall).toFixed(2)}x CPU`);
  }
  return lines.join('\n');
}
