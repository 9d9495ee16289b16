/**
 * Why the Check costs 3-5x more inside the running service than in a hot loop (a script, not a
 * test): decode + app.check of the bench's service-token request, timed per call, once back to back
 * and once with a sweep over `kb` KiB of memory before each call (timed outside the call), which
 * evicts the Check's code and data from the caches roughly as the grpc-js, nghttp2 and kernel work
 * between two Checks does in the service.
 *
 *   npm run build && node dist/test/bench/cold-check.js [kb ...]   (default 32 256 1024 4096)
 */
import { startApp } from '../../src/app';
import { loadConfig } from '../../src/config/load';
import { decodeCheckRequest } from '../../src/grpc/decode';
import { createLogger } from '../../src/log';
import { insertToken } from '../../src/store/tokens';
import { checkFrame } from './frames';

const CALLS = 3000;
const ROUNDS = 7;

async function main(): Promise<void> {
  const sizes = process.argv.slice(2).map(Number);
  const cfg = loadConfig({
    ORCHEO_AUTH_GRPC_ADDR: '127.0.0.1:0',
    ORCHEO_AUTH_HTTP_ADDR: '127.0.0.1:0',
    ORCHEO_AUTH_HTTP_AUTHZ_ADDR: 'off',
    ORCHEO_AUTH_SERVICE_TOKEN_DB_PATH: 'memory://',
    ORCHEO_AUTH_JWT_SECRET: 'cold-check-secret-0123456789abcdef0123456789',
    LOG_LEVEL: 'warn',
  });
  const app = await startApp(cfg, { logger: createLogger(cfg.log.level) });
  try {
    const { secret } = await insertToken(app.db, { id: 'cold-check', scopes: ['workflows:read', 'workflows:write'], workspaces: ['*'] });
    await app.index.resync();
    const bytes = checkFrame(secret).subarray(5);
    if (!(await app.check(decodeCheckRequest(bytes))).allow) throw new Error('the probe request was not allowed');
    let sink = 0;
    /** µs per call, min over rounds; `sweep` runs before each call, outside the timed part. */
    const time = async (sweep?: Uint8Array): Promise<number> => {
      let best = Infinity;
      for (let r = 0; r < ROUNDS; r++) {
        let inside = 0n;
        for (let i = 0; i < CALLS; i++) {
          if (sweep) for (let j = 0; j < sweep.length; j += 64) sink += sweep[j]++;
          const t0 = process.hrtime.bigint();
          await app.check(decodeCheckRequest(bytes));
          inside += process.hrtime.bigint() - t0;
        }
        best = Math.min(best, Number(inside) / CALLS / 1e3);
      }
      return best;
    };
    await time(); // warm-up: the first round also pays for optimising the pipeline
    console.log(`cold-check: decode + app.check, service-token allow, µs per call (min of ${ROUNDS} rounds of ${CALLS}), node ${process.version}`);
    console.log(`  back to back                 ${(await time()).toFixed(2).padStart(7)}`);
    for (const kb of sizes.length ? sizes : [32, 256, 1024, 4096]) {
      console.log(`  after a ${`${kb} KiB`.padEnd(9)} sweep each   ${(await time(new Uint8Array(kb << 10))).toFixed(2).padStart(7)}`);
    }
    if (sink === -1) console.log(sink); // keeps the sweeps from being optimised away
  } finally {
    await app.stop(100);
  }
}

if (process.env['NODE_TEST_CONTEXT']) {
  console.log('cold-check.ts is a benchmark script, not a test.');
} else {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
