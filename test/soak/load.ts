/**
 * Node load generator for the Check service, meant to run in its own process (so its CPU and its
 * sockets are not the server's). Sends pre-encoded CheckRequests round-robin over a few channels,
 * decodes every answer and checks it against the expected decision and code.
 *
 *   node dist/test/soak/load.js '<json LoadConfig>'
 *
 * Prints `{"event":"started"}` once the first calls are on the wire, then one JSON summary line when
 * done (or on SIGTERM/SIGINT). Used by the soak runner (when h2load is missing) and by the gRPC fault
 * test, which SIGKILLs it mid-flight.
 */
import * as grpc from '@grpc/grpc-js';
import { AUTHZ_V3 } from '../../src/grpc/descriptors';
import { decodeCheckResponse, encodeCheckRequest } from '../helpers/check-codec';
import { percentile } from '../helpers/wait';

export interface LoadBody {
  readonly name: string;
  /** The serialised CheckRequest, base64. */
  readonly message: string;
  readonly expect: 'allow' | 'deny';
  /** Deny code expected in status.message (deny only). */
  readonly code?: string;
}

export interface LoadConfig {
  readonly port: number;
  readonly bodies: readonly LoadBody[];
  /** Calls in flight at most. */
  readonly concurrency: number;
  readonly durationMs: number;
  /** Calls per second over all channels; 0: as fast as `concurrency` allows. */
  readonly rps?: number;
  readonly channels?: number;
  readonly deadlineMs?: number;
}

export interface LoadSummary {
  readonly event: 'summary';
  readonly sent: number;
  readonly completed: number;
  readonly allows: number;
  readonly denies: number;
  /** gRPC errors (any status but OK). */
  readonly grpcErrors: number;
  /** Answers that decoded but did not match the expected decision or code. */
  readonly mismatches: number;
  readonly elapsedMs: number;
  readonly rps: number;
  readonly latencyMs: { p50: number; p99: number; max: number };
  readonly samples: string[];
}

const METHOD = `/${AUTHZ_V3}/Check`;

export { decodeCheckResponse, encodeCheckRequest };

/** 0 for no samples: a run that completed nothing still writes numbers to its report. */
const pct = (sorted: number[], p: number): number => (sorted.length === 0 ? 0 : percentile(sorted, p));

export async function runLoad(cfg: LoadConfig, onStarted?: () => void): Promise<LoadSummary> {
  const bodies = cfg.bodies.map((b) => ({ ...b, buf: Buffer.from(b.message, 'base64') }));
  const clients = Array.from(
    { length: Math.max(1, cfg.channels ?? 4) },
    // A local subchannel pool per client: separate HTTP/2 connections, as separate Envoys would hold.
    () => new grpc.Client(`127.0.0.1:${cfg.port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }),
  );
  const deadlineMs = cfg.deadlineMs ?? 10_000;
  let sent = 0;
  let completed = 0;
  let allows = 0;
  let denies = 0;
  let grpcErrors = 0;
  let mismatches = 0;
  let inflight = 0;
  const samples: string[] = [];
  const latencies: number[] = [];
  const start = performance.now();
  const until = start + cfg.durationMs;
  let wake: (() => void) | undefined;

  const note = (s: string): void => {
    if (samples.length < 20) samples.push(s);
  };

  const fire = (): void => {
    const body = bodies[sent % bodies.length]!;
    const client = clients[sent % clients.length]!;
    sent += 1;
    inflight += 1;
    const t0 = performance.now();
    client.makeUnaryRequest(
      METHOD,
      (b: Buffer) => b,
      (b: Buffer) => b,
      body.buf,
      { deadline: Date.now() + deadlineMs },
      (err, res) => {
        inflight -= 1;
        completed += 1;
        if (latencies.length < 200_000) latencies.push(performance.now() - t0);
        if (err || !res) {
          grpcErrors += 1;
          note(`${body.name}: gRPC ${err?.code} ${err?.details ?? ''}`);
        } else {
          const r = decodeCheckResponse(res);
          const allowed = r.ok_response !== undefined && r.ok_response !== null;
          if (allowed) allows += 1;
          else denies += 1;
          if ((body.expect === 'allow') !== allowed || (body.expect === 'deny' && body.code !== undefined && r.status?.message !== body.code)) {
            mismatches += 1;
            note(`${body.name}: expected ${body.expect} ${body.code ?? ''}, got ${allowed ? 'allow' : `deny ${r.status?.message}`}`);
          }
        }
        const w = wake;
        wake = undefined;
        w?.();
      },
    );
  };

  const rps = cfg.rps ?? 0;
  const tickMs = 10;
  let announced = false;
  while (performance.now() < until) {
    if (rps > 0) {
      // Paced: the number of calls due by now, capped by the in-flight bound.
      const due = Math.floor(((performance.now() - start) / 1000) * rps);
      while (sent < due && inflight < cfg.concurrency) fire();
      await new Promise((r) => setTimeout(r, tickMs));
    } else {
      while (inflight < cfg.concurrency) fire();
      await new Promise<void>((r) => (wake = r));
    }
    if (!announced) {
      announced = true;
      onStarted?.();
    }
  }
  // Drain what is still in flight (bounded by the deadline).
  const drainUntil = performance.now() + deadlineMs + 1000;
  while (inflight > 0 && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 5));
  for (const c of clients) c.close();
  const elapsedMs = performance.now() - start;
  latencies.sort((a, b) => a - b);
  return {
    event: 'summary',
    sent,
    completed,
    allows,
    denies,
    grpcErrors,
    mismatches,
    elapsedMs: Math.round(elapsedMs),
    rps: Math.round((completed / elapsedMs) * 1000),
    latencyMs: { p50: +pct(latencies, 50).toFixed(2), p99: +pct(latencies, 99).toFixed(2), max: +pct(latencies, 100).toFixed(2) },
    samples,
  };
}

if (require.main === module) {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as LoadConfig;
  let done = false;
  const finish = (s: LoadSummary): void => {
    if (done) return;
    done = true;
    process.stdout.write(`${JSON.stringify(s)}\n`);
    process.exit(0);
  };
  runLoad(cfg, () => process.stdout.write(`${JSON.stringify({ event: 'started' })}\n`)).then(finish, (err: unknown) => {
    process.stderr.write(`load generator failed: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  });
}
