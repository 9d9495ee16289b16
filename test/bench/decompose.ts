/**
 * Where the gap to the baseline goes (a script, not part of `npm run bench`): same-core ratios
 * (crosscheck.ts sameCore) of the service and of two stripped baselines, all against the bench's
 * baseline (protobufjs decoding the request, the service's own reply bytes):
 *
 *   baseline, no decode        the request is never read: grpc-js alone, the ceiling
 *   baseline, our decoder      src/grpc/decode.ts instead of protobufjs, then the same lookup
 *   service                    decode + the whole Check (pipeline, observers, encoding)
 *
 *   npm run build && node dist/test/bench/decompose.js [seconds=3] [runs=3]   (DECOMPOSE_ONLY=<regex> of paths)
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sameCore, type CrossCheckPath } from './crosscheck';
import { BOOTSTRAP_TOKEN, JWT_SECRET, setupFixtures } from './fixtures';
import { checkFrame, jwtPayload, rawCheck, signHs256 } from './frames';
import { canPin, killAll, startBaselineProcess, startService, type Proc } from './service-process';

async function main(): Promise<void> {
  if (!canPin()) throw new Error('decompose needs taskset and two cores (both servers share one core)');
  const seconds = Number(process.argv[2] ?? 3);
  const runs = Number(process.argv[3] ?? 3);
  const only = process.env['DECOMPOSE_ONLY'] ? new RegExp(process.env['DECOMPOSE_ONLY'], 'i') : undefined;
  const f = await setupFixtures({ ip: 1e6, identity: 1e6 });
  const procs: Proc[] = [];
  try {
    const up = async (p: Promise<Proc>): Promise<Proc> => (procs.push(await p), procs[procs.length - 1]!);
    // As in the bench: the bootstrap token (a digest compare on every Check) only on its own process.
    const svc = await up(startService(f.baseEnv, f.dir, 'service'));
    const boot = await up(startService({ ...f.baseEnv, ...f.bootstrapEnv }, f.dir, 'bootstrap'));
    const jwt = signHs256(JWT_SECRET, jwtPayload('bench-user', 'bench-jti'));
    const paths = [
      ['service token allow', `Bearer ${f.serviceToken}`, checkFrame(f.serviceToken), svc],
      ['JWT allow, cached', `Bearer ${jwt}`, checkFrame(jwt), svc],
      ['deny (no token)', '', checkFrame(undefined), svc],
      ['bootstrap allow', `Bearer ${BOOTSTRAP_TOKEN}`, checkFrame(BOOTSTRAP_TOKEN), boot],
    ] as const;
    const byAuthorization: Record<string, string> = {};
    for (const [, auth, frame, proc] of paths) byAuthorization[auth] = (await rawCheck(proc.grpcPort, frame)).bytes.toString('base64');
    const replies = join(f.dir, 'replies.json');
    writeFileSync(replies, JSON.stringify({ byAuthorization, fallback: byAuthorization[''] }));
    const base = await up(startBaselineProcess(f.dir, 'baseline', replies));
    const ours = await up(startBaselineProcess(f.dir, 'baseline-our-decoder', replies, 'ours'));

    const spec = { pairs: runs, seconds, connections: 4, streams: 32 };
    console.log(`same-core ratios to the baseline (completed calls, median of ${runs} runs of ${seconds}s at 4x32)`);
    console.log(`  ${'path'.padEnd(22)}  no decode  our decoder  service`);
    for (const [name, auth, frame, proc] of paths) {
      if (only && !only.test(name)) continue;
      const frameFile = join(f.dir, `${name.replace(/\W+/g, '-')}.bin`);
      writeFileSync(frameFile, frame);
      const own = join(f.dir, `${name.replace(/\W+/g, '-')}.replies.json`);
      writeFileSync(own, JSON.stringify({ byAuthorization: {}, fallback: byAuthorization[auth] }));
      const none = await startBaselineProcess(f.dir, 'baseline-no-decode', own, 'none');
      procs.push(none);
      const vs = (p: Proc): CrossCheckPath => ({ name, servicePort: p.grpcPort, baselinePort: base.grpcPort, frameFile });
      const [n, o, s] = [(await sameCore([vs(none)], spec))[0]!, (await sameCore([vs(ours)], spec))[0]!, (await sameCore([vs(proc)], spec))[0]!];
      await none.stop();
      console.log(`  ${name.padEnd(22)}  ${n.ratio.toFixed(2).padStart(9)}  ${o.ratio.toFixed(2).padStart(11)}  ${s.ratio.toFixed(2).padStart(7)}`);
    }
  } finally {
    for (const p of procs) await p.stop().catch(() => undefined);
    killAll();
    await f.teardown();
  }
}

if (!process.env['NODE_TEST_CONTEXT']) {
  main().catch((err: unknown) => {
    console.error(`decompose failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  });
}
