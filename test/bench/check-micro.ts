/**
 * Micro-benchmark (a script, not a test): what each part of the Check path costs in µs per call,
 * in-process, on the same requests the bench sends (frames.ts). On a noisy machine end-to-end ratios
 * move by ±30 %; a minimum over rounds of tight loops is steadier and prices each known cost:
 *
 *   npm run build && node dist/test/bench/check-micro.js [calls per round] 2>/dev/null
 *   (MICRO_ONLY=<regex> keeps the matching rows; add --cpu-prof to profile one of them)
 *
 * Rows: the request's decoding and mapping (grpc/request.ts), the timed pipeline per path, the
 * encoding of the answer (grpc/response.ts), a histogram observation, the deny log line (the same
 * deny with LOG_LEVEL=info and =warn), and an empty async layer (the price of one more wrapper).
 */
import { startApp, type App } from '../../src/app';
import { loadConfig } from '../../src/config/load';
import { AUTHZ_V3, loadPackageDefinition } from '../../src/grpc/descriptors';
import { fromCheckRequest, type RawCheckRequest } from '../../src/grpc/request';
import { encodeCheckResponse } from '../../src/grpc/response';
import { createLogger } from '../../src/log';
import type { Decision, RequestParts } from '../../src/pipeline/decision';
import { insertToken } from '../../src/store/tokens';
import { checkFrame, jwtPayload, signHs256 } from './frames';

const N = Number(process.argv[2] ?? 20_000);
const ROUNDS = 7;
const SECRET = 'micro-secret-0123456789abcdef0123456789abcdef';
const BOOTSTRAP = 'bootstrap-micro-0123456789abcdef0123456789';

type Case = readonly [name: string, fn: (i: number) => unknown];

/**
 * Mean µs per call of each case (awaited when it returns a promise): the minimum over rounds, the
 * cases interleaved within each round so a burst of foreign load hits them alike.
 */
async function usPerCall(cases: readonly Case[]): Promise<Array<[string, number]>> {
  const best = cases.map(() => Infinity);
  for (let r = 0; r < ROUNDS; r++) {
    for (const [c, [, fn]] of cases.entries()) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < N; i++) {
        const x = fn(i);
        if (x instanceof Promise) await x;
      }
      best[c] = Math.min(best[c]!, Number(process.hrtime.bigint() - t0) / 1e3 / N);
    }
  }
  return cases.map(([name], c) => [name, best[c]!]);
}

async function app(level: string): Promise<App> {
  const cfg = loadConfig({
    ORCHEO_AUTH_GRPC_ADDR: '127.0.0.1:0',
    ORCHEO_AUTH_HTTP_ADDR: '127.0.0.1:0',
    // Two apps run side by side: the HTTP authorization interface's fixed default port would collide.
    ORCHEO_AUTH_HTTP_AUTHZ_ADDR: 'off',
    ORCHEO_AUTH_SERVICE_TOKEN_DB_PATH: 'memory://',
    ORCHEO_AUTH_JWT_SECRET: SECRET,
    ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOTSTRAP,
    LOG_LEVEL: level,
  });
  return startApp(cfg, { logger: createLogger(cfg.log.level) });
}

async function main(): Promise<void> {
  const info = await app('info');
  const warn = await app('warn');
  const { secret } = await insertToken(info.db, { id: 'micro-service', scopes: ['workflows:read', 'workflows:write'], workspaces: ['*'] });
  await info.index.resync();
  const method = (loadPackageDefinition()[AUTHZ_V3] as unknown as { Check: { requestDeserialize(b: Buffer): unknown } }).Check;
  const raw = (bearer: string | undefined): RawCheckRequest => method.requestDeserialize(checkFrame(bearer).subarray(5)) as RawCheckRequest;
  const paths: Record<string, RawCheckRequest> = {
    'service token allow': raw(secret),
    'JWT allow, cached': raw(signHs256(SECRET, jwtPayload('micro-user', 'micro-jti'))),
    bootstrap: raw(BOOTSTRAP),
    'deny (no token)': raw(undefined),
  };
  const cases: Case[] = [];
  for (const [name, r] of Object.entries(paths)) {
    const parts: RequestParts = fromCheckRequest(r);
    const d: Decision = await info.check(parts);
    if (d.allow !== !name.startsWith('deny')) throw new Error(`${name}: unexpected decision ${JSON.stringify(d.outcome)}`);
    cases.push([`${name}: fromCheckRequest`, () => fromCheckRequest(r)]);
    cases.push([`${name}: app.check (timed pipeline)`, () => info.check(parts)]);
    cases.push([`${name}: encodeCheckResponse`, () => encodeCheckResponse(d)]);
  }
  const denyParts = fromCheckRequest(paths['deny (no token)']!);
  cases.push(['deny (no token): app.check at LOG_LEVEL=warn (no deny line)', () => warn.check(denyParts)]);
  cases.push(['histogram observe (checkDuration)', () => info.metrics.checkDuration.observe(0.00012)]);
  const layer = async (x: number): Promise<number> => x;
  cases.push(['one empty async layer, awaited', (i) => layer(i)]);
  cases.push(['loop with a resolved promise awaited (floor)', () => Promise.resolve()]);
  const only = process.env['MICRO_ONLY'] ? new RegExp(process.env['MICRO_ONLY'], 'i') : undefined;
  const rows = await usPerCall(cases.filter(([name]) => !only || only.test(name)));
  const w = Math.max(...rows.map(([k]) => k.length));
  console.log(`check-micro: min over ${ROUNDS} rounds of ${N} calls, µs/call, node ${process.version}`);
  for (const [k, v] of rows) console.log(`  ${k.padEnd(w)}  ${v.toFixed(2).padStart(7)}`);
  await Promise.all([info.stop(100), warn.stop(100)]);
}

if (process.env['NODE_TEST_CONTEXT']) {
  console.log('check-micro.ts is a micro-benchmark script, not a test.');
} else {
  main().catch((err: unknown) => {
    console.error(err);
    // The apps' servers and timers would keep the process alive.
    process.exit(1);
  });
}
