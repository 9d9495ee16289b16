/**
 * Reads the `--cpu-prof` profiles the service wrote (BENCH_CPU_PROF=<dir>) and prints where the server
 * core went: self time per function, as a share of the non-idle samples, with dist/*.js locations
 * mapped back to the TypeScript sources through the build's source maps.
 *
 *   node dist/test/bench/profile.js <dir-or-file.cpuprofile> [top] [regex: functions to give inclusive time for; default src/]
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  children?: number[];
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
}

const ROOT = resolve(__dirname, '..', '..', '..');
const maps = new Map<string, SourceMap | null>();

/** `file:///…/dist/src/x.js`, 0-based line/col → `src/x.ts:line` (1-based), else the js location. */
function locate(url: string, line: number, col: number): string {
  if (!url) return '';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  let map = maps.get(path);
  if (map === undefined) {
    map = null;
    try {
      if (existsSync(`${path}.map`)) map = new SourceMap(JSON.parse(readFileSync(`${path}.map`, 'utf8')));
    } catch {
      /* no usable map */
    }
    maps.set(path, map);
  }
  const entry = map?.findEntry(line, col) as { originalSource?: string; originalLine?: number } | undefined;
  if (entry?.originalSource) {
    const src = entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : resolve(path, '..', entry.originalSource);
    return `${relative(ROOT, src)}:${(entry.originalLine ?? 0) + 1}`;
  }
  const shown = path.startsWith(ROOT) ? relative(ROOT, path) : path;
  return `${shown.replace(/^.*node_modules\//, '')}:${line + 1}`;
}

export function hotspots(file: string, top = 20, inclusive = /  src\//): string {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples?: number[] };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const keyOf = new Map<number, string>();
  for (const n of prof.nodes) {
    const { functionName, url, lineNumber, columnNumber } = n.callFrame;
    keyOf.set(n.id, `${functionName || '(anonymous)'}  ${locate(url, lineNumber, columnNumber)}`.trimEnd());
  }
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  for (const id of prof.samples ?? []) {
    const node = byId.get(id)!;
    if (node.callFrame.functionName === '(idle)') {
      idle++;
      continue;
    }
    busy++;
    self.set(keyOf.get(id)!, (self.get(keyOf.get(id)!) ?? 0) + 1);
    // Inclusive time of the functions `inclusive` selects (the service's own: src/…), once per sample.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const k = keyOf.get(at)!;
      if (inclusive.test(k)) seen.add(k);
    }
    for (const k of seen) total.set(k, (total.get(k) ?? 0) + 1);
  }
  const pct = (x: number, of: number): string => `${((100 * x) / of).toFixed(1).padStart(5)}%`;
  const list = (m: Map<string, number>): string[] => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => `  ${pct(v, busy)}  ${k}`);
  return [
    `${file}: ${busy + idle} samples, busy ${pct(busy, busy + idle)}`,
    'self time, % of busy:',
    ...list(self),
    `inclusive time of functions matching ${inclusive}, % of busy:`,
    ...list(total),
  ].join('\n');
}

/** Prints the hotspots of every .cpuprofile in `dirOrFile`. */
export function printHotspots(dirOrFile: string, top = 20, inclusive?: RegExp): void {
  const files = statSync(dirOrFile).isDirectory()
    ? readdirSync(dirOrFile).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dirOrFile, f))
    : [dirOrFile];
  for (const f of files.sort()) console.log(`\n${hotspots(f, top, inclusive)}`);
}

if (require.main === module && !process.env['NODE_TEST_CONTEXT']) {
  printHotspots(process.argv[2] ?? '.', Number(process.argv[3] ?? 20), process.argv[4] ? new RegExp(process.argv[4]) : undefined);
}
