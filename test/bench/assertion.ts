/**
 * Identity assertion cost (a script and an exported function, not a test):
 *  - allow throughput of the in-process Check (pipeline + CheckResponse + protobuf encoding, what
 *    the gRPC handler does per call) with assertions on, as a ratio to the same with them off
 *    (target ≥ 0.85; the cache makes it a lookup per call);
 *  - uncached signing cost per algorithm in µs (every call a new audience, so every call signs).
 *
 *   npx tsc -p . && node dist/test/bench/assertion.js [calls]
 */
import { startApp, type App } from '../../src/app';
import { loadConfig } from '../../src/config/load';
import { createLogger } from '../../src/log';
import { encodeCheckResponse } from '../../src/grpc/response';
import { generatePrivatePem, importSigningKey, KeySet, publicJwkOf } from '../../src/assertion/keys';
import type { KeySource } from '../../src/assertion/key-source';
import type { AssertionAlg } from '../../src/assertion/key-file';
import { AssertionSigner } from '../../src/assertion/signer';
import type { Identity } from '../../src/authn/types';
import type { RequestParts } from '../../src/pipeline/decision';
import { insertToken } from '../../src/store/tokens';

export interface AssertionBench {
  readonly allowOpsOff: number;
  readonly allowOpsOn: number;
  /** allowOpsOn / allowOpsOff. */
  readonly ratio: number;
  readonly signUs: Readonly<Record<AssertionAlg, number>>;
}

async function opsPerSecond(n: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(500, n); i++) await fn(i);
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn(i);
  return (n / Number(process.hrtime.bigint() - start)) * 1e9;
}

async function app(assertions: boolean): Promise<{ app: App; parts: RequestParts }> {
  const cfg = loadConfig({ ORCHEO_AUTH_GRPC_ADDR: '127.0.0.1:0', ORCHEO_AUTH_HTTP_ADDR: '127.0.0.1:0', ORCHEO_AUTH_HTTP_AUTHZ_ADDR: 'off', ORCHEO_AUTH_SERVICE_TOKEN_DB_PATH: 'memory://', ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_ASSERTION: String(assertions), LOG_LEVEL: 'silent' });
  const a = await startApp(cfg, { logger: createLogger('silent') });
  const { record, secret } = await insertToken(a.db, { id: 'bench', scopes: ['workflows:read'], workspaces: ['ws-1'] });
  a.index.apply(record);
  const parts: RequestParts = { method: 'GET', path: '/api/workflows', headers: new Map([[':authority', 'api.example.com'], ['authorization', `Bearer ${secret}`]]) };
  return { app: a, parts };
}

async function signCost(alg: AssertionAlg, n: number): Promise<number> {
  const { pem, publicKey } = generatePrivatePem(alg);
  const key = { kid: 'bench', alg, privateKey: await importSigningKey(pem, alg), publicJwk: await publicJwkOf(publicKey, alg), signsFrom: 0 };
  const set = new KeySet([key]);
  const source: KeySource = { kind: 'file', keys: () => set, start: async () => undefined, stop: () => undefined };
  const signer = new AssertionSigner({ source, issuer: 'orcheo-authz', ttlSeconds: 300, now: Date.now, maxEntries: 16 });
  const id: Identity = { authenticated: true, type: 'service', subject: 'bench', tokenId: 'bench', scopes: new Set(['workflows:read']), workspaces: new Set(['ws-1']), source: 'service_token' };
  return 1e6 / (await opsPerSecond(n, (i) => signer.assertion(id, `aud-${i}`)));
}

export async function benchAssertions(calls = 20_000): Promise<AssertionBench> {
  const off = await app(false);
  const on = await app(true);
  try {
    const allow = (a: { app: App; parts: RequestParts }) => async () => {
      const d = await a.app.check(a.parts);
      if (!d.allow) throw new Error('bench request was denied');
      // As the gRPC server does: cached encoded parts plus the per-request tail.
      encodeCheckResponse(d);
    };
    // Interleaved repeats, best of each: foreign load on the machine hits both alike.
    let allowOpsOff = 0;
    let allowOpsOn = 0;
    for (let r = 0; r < 3; r++) {
      allowOpsOff = Math.max(allowOpsOff, await opsPerSecond(calls, allow(off)));
      allowOpsOn = Math.max(allowOpsOn, await opsPerSecond(calls, allow(on)));
    }
    const n = Math.max(500, Math.floor(calls / 10));
    return { allowOpsOff, allowOpsOn, ratio: allowOpsOn / allowOpsOff, signUs: { ES256: await signCost('ES256', n), EdDSA: await signCost('EdDSA', n) } };
  } finally {
    await off.app.stop(100);
    await on.app.stop(100);
  }
}

export function formatAssertionBench(b: AssertionBench): string {
  return [
    `identity assertion: allow ${Math.round(b.allowOpsOn)} ops/s on vs ${Math.round(b.allowOpsOff)} off (in-process Check + encode): ratio ${b.ratio.toFixed(2)} (target >= 0.85)`,
    `uncached signing: ES256 ${b.signUs.ES256.toFixed(1)} µs, EdDSA ${b.signUs.EdDSA.toFixed(1)} µs`,
  ].join('\n');
}

if (require.main === module && !process.env['NODE_TEST_CONTEXT']) {
  benchAssertions(Number(process.argv[2] ?? 20_000)).then(
    (b) => console.log(formatAssertionBench(b)),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
