/**
 * gRPC transport faults against the service running in its own process (test/soak/server.ts: the
 * real app plus a GC-then-measure route, started with --expose-gc): calls cancelled mid-flight,
 * deadlines exceeded, 10,000 concurrent streams over four connections, and clients SIGKILLed
 * mid-flight. The server must keep answering, and after a full GC its heap and handles must be back
 * where they were.
 *
 * To have Checks really pending inside the server while their clients give up, the service's JWKS
 * provider hangs: every RS256 Check then waits up to ORCHEO_AUTH_JWKS_TIMEOUT for one shared fetch.
 *
 * Every phase uses its own connections: Node's HTTP/2 server (nghttp2) may end a connection whose
 * client resets more than 1000 streams in a burst (rapid-reset protection, +33/s), so that is tested
 * on a connection of its own rather than left as noise in the other phases.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { call, channel, errorLines, httpGet, settled, snapshot, startChild, tally, type CallResult, type Snapshot } from './helpers/fault-grpc';
import { checkRequest } from './helpers/grpc-client';
import { jwksOf, makeKey, sign, startJwksServer, type JwksServer } from './helpers/jwks-server';
import { embeddedStore } from './helpers/pglite-template';
import { reap } from './helpers/reaper';
import type { ServerProcess } from './helpers/spawn';
import { encodeCheckRequest } from './helpers/check-codec';
import type { LoadBody } from './soak/load';

const LOAD_JS = join(__dirname, 'soak', 'load.js');
const BOOT = 'bootstrap-secret-for-tests-0123456789';
/** How long an RS256 Check waits inside the server for the hung JWKS fetch: past every client's deadline or cancel (<= 1.5 s). */
const JWKS_TIMEOUT_S = 3;
/** The service's wait after a failed JWKS fetch (production: 5 s). */
const JWKS_BACKOFF_MS = 1000;

describe('gRPC faults against the service in a child process', () => {
  let server: ServerProcess;
  let jwks: JwksServer;
  let allowBody: Buffer;
  let denyBody: Buffer;
  let rsBody: Buffer;
  let loadBodies: LoadBody[];
  let baseline: Snapshot;
  /** What the server still held, beyond its state before any client connected, when the baseline was taken. */
  let warmUpLeft: string[];
  let warmUp: Record<string, number>;
  let startedAt = 0;
  let store: { dir: string; remove(): void } | undefined;
  const open: grpc.Client[] = [];

  before(async () => {
    const k1 = await makeKey('RS256', 'k1');
    jwks = await startJwksServer(jwksOf(k1));
    // The startup fetch fails at once (connection reset), which starts the failure backoff; the
    // abandoned-Checks test then makes the provider hang and its first RS256 Check opens a fetch.
    jwks.setDown('reset');
    allowBody = encodeCheckRequest(checkRequest({ path: '/api/workflows', headers: { authorization: `Bearer ${BOOT}`, 'x-orcheo-subject': 'spoof' } }));
    denyBody = encodeCheckRequest(checkRequest({ path: '/api/workflows', headers: { authorization: 'Bearer not-a-token' } }));
    rsBody = encodeCheckRequest(checkRequest({ path: '/api/profile', headers: { authorization: `Bearer ${await sign({ sub: 'u', exp: Math.floor(Date.now() / 1000) + 3600 }, k1)}` } }));
    loadBodies = [
      { name: 'allow', message: allowBody.toString('base64'), expect: 'allow' },
      { name: 'deny', message: denyBody.toString('base64'), expect: 'deny', code: 'auth.invalid_token' },
    ];
    store = await embeddedStore();
    server = await startChild({
      ORCHEO_AUTH_MODE: 'required',
      ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT,
      // A copy of the initialised embedded store: memory:// would run initdb (~5 s of CPU) in the child.
      ORCHEO_AUTH_SERVICE_TOKEN_DB_PATH: store.dir,
      ORCHEO_AUTH_JWKS_URL: jwks.jwksUrl,
      ORCHEO_AUTH_JWKS_TIMEOUT: String(JWKS_TIMEOUT_S),
    }, JWKS_BACKOFF_MS);
    startedAt = Date.now(); // the startup fetch failed just before the service announced itself
    const initial = await snapshot(server.httpPort);
    // Warm-up and the baseline the last test compares with, taken here so any test can run alone.
    const cs = Array.from({ length: 4 }, () => channel(server.grpcPort));
    warmUp = tally(await Promise.all(Array.from({ length: 1000 }, (_, i) => call(cs[i % 4]!, i % 2 ? allowBody : denyBody, Date.now() + 10_000))));
    cs.forEach((c) => c.close());
    // Every warm-up session gone: the baseline holds no more sockets than before the first client.
    // (Timers are compared from the baseline on: some start with the first request.)
    ({ snap: baseline, left: warmUpLeft } = await settled(server.httpPort, initial.stats, { timers: false }));
  });

  after(async () => {
    for (const c of open) c.close();
    await server?.stop(5000);
    await jwks?.close();
    store?.remove();
  });

  /** `n` fresh connections, closed when the test ends. */
  const connections = (tc: { after(fn: () => void): void }, n: number): grpc.Client[] => {
    const cs = Array.from({ length: n }, () => channel(server.grpcPort));
    open.push(...cs);
    tc.after(() => cs.forEach((c) => c.close()));
    return cs;
  };
  /** One call on a new connection: the server still accepts and answers. */
  const stillAnswering = async (body: Buffer): Promise<CallResult> => {
    const c = channel(server.grpcPort);
    try {
      return await call(c, body, Date.now() + 5000);
    } finally {
      c.close();
    }
  };
  const keyUnavailableCount = async (): Promise<number> => {
    const m = /^orcheo_authz_checks_total\{[^}]*code="auth\.key_unavailable"[^}]*\} (\d+)/m.exec(await httpGet(server.httpPort, '/metrics'));
    return m ? Number(m[1]) : 0;
  };
  const GOAWAY = /Session closed with error code 2|RST_STREAM with code 2/;

  test('baseline after warm-up (no client connected)', (tc) => {
    assert.deepEqual(warmUp, { allow: 500, 'deny auth.invalid_token': 500 });
    assert.deepEqual(warmUpLeft, [], 'the warm-up connections are gone from the server (kind: before → after)');
    tc.diagnostic(`baseline: heap used ${(baseline.stats.memory.heapUsed / 1e6).toFixed(1)} MB (metrics ${(baseline.heapUsed / 1e6).toFixed(1)}), handles ${baseline.stats.handles} (metrics ${baseline.handles}), resources ${JSON.stringify(baseline.stats.resources)}`);
  });

  test('Checks pending in the server abandoned by their clients: deadlines, cancels, a 1,200-reset burst on one connection', async (tc) => {
    // Past the failure backoff of the startup fetch, so the first RS256 Check opens a new (hung) fetch.
    await sleep(Math.max(0, startedAt + JWKS_BACKOFF_MS + 500 - Date.now()));
    jwks.setDown(false);
    jwks.setDelay(30_000);
    const before = await keyUnavailableCount();
    const deadlineConns = connections(tc, 2);
    const cancelConns = connections(tc, 4);
    const [burstConn] = connections(tc, 1);
    // Connected first, so every call below goes on the wire at once (no connect or LB-pick delay).
    for (const c of [...deadlineConns, ...cancelConns, burstConn!]) assert.equal((await call(c, allowBody, Date.now() + 5000)).allowed, true);
    const t0 = Date.now();
    const [deadlines, cancels, burst] = await Promise.all([
      Promise.all(Array.from({ length: 200 }, (_, i) => call(deadlineConns[i % 2]!, rsBody, t0 + 1500))),
      Promise.all(Array.from({ length: 600 }, (_, i) => call(cancelConns[i % 4]!, rsBody, t0 + 30_000, (c) => setTimeout(() => c.cancel(), 1200 + (i % 300))))),
      // 1,200 resets on one connection within a fraction of a second: past nghttp2's rapid-reset budget.
      Promise.all(Array.from({ length: 1200 }, (_, i) => call(burstConn!, rsBody, t0 + 30_000, (c) => setTimeout(() => c.cancel(), 1300 + (i % 200))))),
    ]);
    const abandonedMs = Date.now() - t0;
    tc.diagnostic(`deadline 1.5 s: ${JSON.stringify(tally(deadlines))}; cancelled: ${JSON.stringify(tally(cancels))}; burst: ${JSON.stringify(tally(burst))}; all settled after ${abandonedMs} ms`);
    // All of them CANCELLED / DEADLINE_EXCEEDED (asserted below) means no answer came before the client left.
    assert.deepEqual(tally(deadlines), { 'grpc DEADLINE_EXCEEDED': 200 });
    assert.deepEqual(tally(cancels), { 'grpc CANCELLED': 600 });
    // If nghttp2 ends the burst connection (GOAWAY INTERNAL_ERROR), calls still open on it fail with
    // INTERNAL instead of CANCELLED. Nothing else is acceptable.
    for (const k of Object.keys(tally(burst))) assert.ok(k === 'grpc CANCELLED' || (k.startsWith('grpc INTERNAL') && GOAWAY.test(k)), `unexpected outcome ${k}`);

    // The fetch times out; every abandoned handler then completes on a call that is gone.
    await sleep(Math.max(0, t0 + JWKS_TIMEOUT_S * 1000 + 300 - Date.now()));
    let decided = (await keyUnavailableCount()) - before;
    for (let i = 0; i < 30 && decided < 800; i++) {
      await sleep(100);
      decided = (await keyUnavailableCount()) - before;
    }
    tc.diagnostic(`abandoned Checks the server went on to decide (auth.key_unavailable): ${decided} (800 abandoned by deadline or cancel, plus those of the burst connection that reached it)`);
    assert.ok(decided >= 800, `only ${decided} abandoned Checks were pending in the server`);
    let r = await call(burstConn!, allowBody, Date.now() + 5000);
    for (let i = 0; i < 3 && r.code !== 0; i++) {
      tc.diagnostic(`burst connection afterwards: ${grpc.status[r.code]} ${r.details}`);
      assert.match(r.details ?? '', GOAWAY);
      r = await call(burstConn!, allowBody, Date.now() + 5000);
    }
    assert.equal(r.allowed, true, 'the burst client is served again (reconnected if it was torn down)');
    assert.equal((await call(cancelConns[0]!, allowBody, Date.now() + 5000)).allowed, true, 'a connection whose calls were all cancelled is still served');
    assert.equal((await stillAnswering(allowBody)).allowed, true);
  });

  test('2,000 fast calls cancelled at random moments, 2,000 with 1-3 ms or past deadlines', async (tc) => {
    const cs = connections(tc, 4);
    const cancelled = await Promise.all(
      Array.from({ length: 2000 }, (_, i) =>
        call(cs[i % 4]!, i % 2 ? allowBody : denyBody, Date.now() + 10_000, (c) => {
          if (i % 3 === 0) c.cancel();
          else if (i % 3 === 1) setImmediate(() => c.cancel());
          else setTimeout(() => c.cancel(), i % 7);
        }),
      ),
    );
    const ct = tally(cancelled);
    assert.deepEqual(Object.keys(ct).filter((k) => !['allow', 'deny auth.invalid_token', 'grpc CANCELLED'].includes(k)), []);
    assert.ok((ct['grpc CANCELLED'] ?? 0) >= 1000, 'most calls were really cancelled');
    const expired = await Promise.all(Array.from({ length: 2000 }, (_, i) => call(cs[i % 4]!, i % 2 ? allowBody : denyBody, i % 10 === 0 ? Date.now() - 1000 : Date.now() + 1 + (i % 3))));
    const et = tally(expired);
    tc.diagnostic(`cancelled: ${JSON.stringify(ct)}; short deadlines: ${JSON.stringify(et)}`);
    assert.deepEqual(Object.keys(et).filter((k) => !['allow', 'deny auth.invalid_token', 'grpc DEADLINE_EXCEEDED'].includes(k)), []);
    assert.ok((et['grpc DEADLINE_EXCEEDED'] ?? 0) >= 200, 'at least the expired ones exceeded');
    assert.equal((await call(cs[0]!, denyBody, Date.now() + 5000)).denyCode, 'auth.invalid_token', 'same connection still answered');
  });

  // No deadline per call (a timer each, client and server: a third of this test's CPU); the test's
  // own timeout is the watchdog.
  test('10,000 concurrent streams over four connections: every one answered correctly', { timeout: 120_000 }, async (tc) => {
    const cs = connections(tc, 4);
    const t0 = performance.now();
    const rs = await Promise.all(Array.from({ length: 10_000 }, (_, i) => call(cs[i % 4]!, i % 2 ? allowBody : denyBody, Infinity)));
    tc.diagnostic(`10,000 concurrent Checks in ${(performance.now() - t0).toFixed(0)} ms: ${JSON.stringify(tally(rs))}`);
    assert.deepEqual(tally(rs), { allow: 5000, 'deny auth.invalid_token': 5000 });
  });

  test('clients SIGKILLed with up to 1,000 calls in flight', async (tc) => {
    for (let round = 0; round < 2; round++) {
      const cfg = { port: server.grpcPort, bodies: loadBodies, concurrency: 1000, durationMs: 20_000, channels: 2 };
      const proc = reap(spawn(process.execPath, [LOAD_JS, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'inherit'] }));
      const exited = new Promise<NodeJS.Signals | null>((r) => proc.once('exit', (_code, sig) => r(sig)));
      await new Promise<void>((resolve, reject) => {
        // A watchdog only: a loaded machine can take seconds to start a Node process.
        const timer = setTimeout(() => reject(new Error('load generator never started')), 30_000);
        createInterface({ input: proc.stdout! }).on('line', (l) => {
          if (l.includes('"started"')) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      await sleep(150 + round * 150);
      proc.kill('SIGKILL');
      assert.equal(await exited, 'SIGKILL');
      assert.equal((await stillAnswering(allowBody)).allowed, true, `answering after kill ${round + 1}`);
    }
    tc.diagnostic('2 load generators killed mid-flight');
  });

  test('afterwards: back to the baseline after GC (heap, handles, sockets), nothing logged at error level', async (tc) => {
    assert.equal(server.child.exitCode, null, 'server alive');
    const cs = connections(tc, 4);
    const probe = await Promise.all(Array.from({ length: 100 }, (_, i) => call(cs[i % 4]!, i % 2 ? allowBody : denyBody, Date.now() + 5000)));
    assert.deepEqual(tally(probe), { allow: 50, 'deny auth.invalid_token': 50 });
    for (const c of open) c.close();
    // Server-side sessions of closed and killed clients go once their sockets report closed.
    const { snap: now, left, ms } = await settled(server.httpPort, baseline.stats);
    const growth = now.stats.memory.heapUsed - baseline.stats.memory.heapUsed;
    tc.diagnostic(
      `after: heap used ${(now.stats.memory.heapUsed / 1e6).toFixed(1)} MB (Δ ${(growth / 1e6).toFixed(2)} MB; metrics ${(now.heapUsed / 1e6).toFixed(1)}), handles ${now.stats.handles} (baseline ${baseline.stats.handles}; metrics ${now.handles}), resources ${JSON.stringify(now.stats.resources)} (settled in ${ms} ms), rss ${(now.stats.memory.rss / 1e6).toFixed(0)} MB`,
    );
    // Handles and every kind of active resource (sockets, HTTP/2 sessions, timers, …) back to the baseline.
    // The test process's own connections to the server, to tell a server-side leak from a client that kept its end open.
    const ours = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles()
      .filter((h): h is Socket => h instanceof Socket && (h.remotePort === server.grpcPort || h.remotePort === server.httpPort))
      .map((h) => `${h.localPort} -> ${h.remotePort}`);
    assert.deepEqual(left, [], `left behind after waiting ${ms} ms (kind: baseline → now; ports: gRPC ${server.grpcPort}, HTTP ${server.httpPort}, JWKS ${new URL(jwks.jwksUrl).port}; this process's sockets to them: ${ours.join(', ') || 'none'})`);
    assert.ok(now.handles <= baseline.handles, `/metrics active handles ${now.handles} > baseline ${baseline.handles}`);
    assert.ok(growth < 8 * 1024 * 1024, `heap grew ${(growth / 1e6).toFixed(2)} MB over ~20,000 faulted calls`);
    assert.ok(now.heapUsed < baseline.heapUsed + 8 * 1024 * 1024, 'heap per /metrics');
    assert.deepEqual(errorLines(server.logs()), [], 'nothing logged at error level');
  });
});
