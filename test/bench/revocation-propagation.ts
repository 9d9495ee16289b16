/**
 * Revocation propagation between two real server processes sharing one Postgres schema:
 * for each of N tokens, revoke through one instance's admin API and poll the other instance over
 * gRPC (every ~1 ms) until it answers auth.token_revoked; report p50/p95/p99/max from the moment
 * the revoke response arrived. Writers alternate between the two instances.
 *
 *   npm run build && node dist/test/bench/revocation-propagation.js [N=100]
 */
import { randomBytes } from 'node:crypto';
import { AuthzClient, deniedBody } from '../helpers/grpc-client';
import { createTestSchema, PG_SKIP_REASON, pgReachable } from '../helpers/pg';
import { adminRequest, startServer, type ServerProcess } from '../helpers/spawn';

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export async function benchRevocationPropagation(n: number): Promise<{ n: number; p50: number; p95: number; p99: number; max: number } | undefined> {
  if (!(await pgReachable())) {
    console.log(`skipped: ${PG_SKIP_REASON}`);
    return undefined;
  }
  const schema = await createTestSchema('bench');
  const boot = randomBytes(32).toString('base64url');
  const env = { ORCHEO_AUTH_DATABASE_URL: schema.url, ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: boot, ORCHEO_AUTH_MODE: 'required' };
  const servers: ServerProcess[] = [];
  const clients: AuthzClient[] = [];
  try {
    servers.push(await startServer(env), await startServer(env));
    clients.push(new AuthzClient(servers[0]!.grpcPort), new AuthzClient(servers[1]!.grpcPort));
    const secrets: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = await adminRequest(servers[i % 2]!.url, 'POST', '', { token: boot, body: { id: `bench-${i}` } });
      if (r.status !== 201) throw new Error(`create failed: ${r.text}`);
      secrets.push(r.body.secret);
    }
    const samples: number[] = [];
    for (let i = 0; i < n; i++) {
      const writer = servers[i % 2]!;
      const reader = clients[(i + 1) % 2]!;
      const check = () => reader.check({ path: '/api/ping', headers: { authorization: `Bearer ${secrets[i]}` } });
      // Both instances know the token before it is revoked.
      for (let tries = 0; !(await check()).ok_response; tries++) {
        if (tries > 3000) throw new Error(`bench-${i} never reached the reader`);
        await new Promise((r) => setTimeout(r, 1));
      }
      const res = await adminRequest(writer.url, 'DELETE', `/bench-${i}`, { token: boot, body: { reason: 'bench' } });
      if (res.status !== 200) throw new Error(`revoke failed: ${res.text}`);
      const start = performance.now();
      while (deniedBody(await check()).code !== 'auth.token_revoked') {
        if (performance.now() - start > 5000) throw new Error(`bench-${i}: not revoked on the other instance after 5 s`);
        await new Promise((r) => setTimeout(r, 1));
      }
      samples.push(performance.now() - start);
    }
    samples.sort((a, b) => a - b);
    const out = { n, p50: pct(samples, 50), p95: pct(samples, 95), p99: pct(samples, 99), max: samples[samples.length - 1]! };
    console.log(
      `revocation propagation across two server processes over ${n} revocations: ` +
        `p50 ${out.p50.toFixed(1)} ms, p95 ${out.p95.toFixed(1)} ms, p99 ${out.p99.toFixed(1)} ms, max ${out.max.toFixed(1)} ms`,
    );
    return out;
  } finally {
    for (const c of clients) c.close();
    for (const s of servers) await s.stop();
    await schema.drop();
  }
}

if (require.main === module && process.env.NODE_TEST_CONTEXT) {
  // Picked up by `node --test dist/test/` (files under test/): the test suite measures this already
  // (test/tokens-propagation.test.ts); run the bench explicitly for the figures.
  console.log('revocation-propagation bench: skipped under the test runner');
} else if (require.main === module) {
  const n = Number(process.argv[2] ?? 100);
  benchRevocationPropagation(Number.isInteger(n) && n > 0 ? n : 100).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
