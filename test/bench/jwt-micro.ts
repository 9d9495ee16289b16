/**
 * Micro-benchmark (a script, not a test): JwtAuthenticator.authenticate() throughput with a warm
 * verified-token cache vs. every token new (full jose verification), per algorithm family.
 *
 *   npx tsc -p . && node dist/test/bench/jwt-micro.js [tokensPerAlg]
 *
 * `node --test dist/test/` also picks up files under test/**, so under the test runner this script
 * only prints a note and exits.
 */
import { createJwtAuthenticator, type JwtAuthenticator } from '../../src/authn/jwt';
import { jwksOf, jwtOptions, makeKey, sign, silentLogger } from '../helpers/jwks-server';

const SECRET = 'bench-secret-0123456789abcdef0123456789abcdef0123456789abcdef';
const N = Number(process.argv[2] ?? 5000);

async function opsPerSecond(n: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  // Warm-up so JIT and key imports are not billed to the first iterations.
  for (let i = 0; i < Math.min(200, n); i++) await fn(i);
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn(i);
  const ns = Number(process.hrtime.bigint() - start);
  return (n / ns) * 1e9;
}

async function benchAlg(alg: string): Promise<{ alg: string; cached: number; uncached: number }> {
  const nowMs = Date.now();
  const payload = (i: number): Record<string, unknown> => ({
    sub: `user-${i}`,
    jti: `jti-${i}`,
    exp: Math.floor(nowMs / 1000) + 3600,
    scope: 'workflows:read workflows:write',
    workspace_ids: ['ws-1', 'ws-2'],
  });
  let authn: JwtAuthenticator;
  let mint: (i: number) => Promise<string>;
  if (alg.startsWith('HS')) {
    authn = createJwtAuthenticator(jwtOptions({ secret: SECRET, allowedAlgorithms: [alg], cacheMaxEntries: 4 * N }), { logger: silentLogger })!;
    mint = (i) => sign(payload(i), { alg, secret: SECRET });
  } else {
    const key = await makeKey(alg, `bench-${alg}`);
    authn = createJwtAuthenticator(jwtOptions({ staticJwks: jwksOf(key), allowedAlgorithms: [alg], cacheMaxEntries: 4 * N }), {
      logger: silentLogger,
    })!;
    mint = (i) => sign(payload(i), key);
  }
  const warm = 200;
  const tokens: string[] = [];
  for (let i = 0; i < N + warm; i++) tokens.push(await mint(i));

  const ok = async (t: string): Promise<void> => {
    const r = await authn.authenticate(t, nowMs);
    if (r.kind !== 'identified') throw new Error(`${alg}: unexpected ${JSON.stringify(r)}`);
  };
  // Uncached: every token seen for the first time (warm-up uses its own tokens).
  const uncached = await opsPerSecond(N, (i) => ok(tokens[(i + warm) % tokens.length]!));
  // Cached: the same small set of tokens over and over.
  const hot = tokens.slice(0, 100);
  for (const t of hot) await ok(t);
  const cached = await opsPerSecond(N * 10, (i) => ok(hot[i % hot.length]!));
  authn.close();
  return { alg, cached, uncached };
}

async function main(): Promise<void> {
  if (process.env['NODE_TEST_CONTEXT']) {
    console.log('jwt-micro is a benchmark script; run it directly with node.');
    return;
  }
  console.log(`authenticate() ops/s, ${N} distinct tokens uncached, ${N * 10} cached calls (node ${process.version})`);
  console.log('alg     cached ops/s   uncached ops/s   uncached µs/op   cached:uncached');
  for (const alg of ['HS256', 'RS256', 'ES256', 'EdDSA']) {
    const r = await benchAlg(alg);
    console.log(
      `${r.alg.padEnd(7)} ${Math.round(r.cached).toString().padStart(12)}   ${Math.round(r.uncached).toString().padStart(14)}   ` +
        `${(1e6 / r.uncached).toFixed(1).padStart(14)}   ${(r.cached / r.uncached).toFixed(1).padStart(8)}x`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
