/**
 * Timing side channels, with random inputs. Wall-clock measurements on a shared machine cannot
 * prove constant time, so the first property checks the structure that guarantees it (every
 * bootstrap comparison is one timingSafeEqual over two SHA-256 digests, whatever was presented),
 * and the second checks that no presented token takes a slower path than another (a database
 * lookup on a miss, an early exit on a long shared prefix would show up as a large difference).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import fc from 'fast-check';
import pino from 'pino';
import { createBootstrapAuthenticator } from '../src/authn/bootstrap';
import { createAuthenticatorChain } from '../src/authn/chain';
import { createServiceTokenAuthenticator } from '../src/authn/service-token';
import type { BootstrapConfig } from '../src/config/types';
import type { Db } from '../src/store/db';
import { generateSecret, hashSecret } from '../src/store/records';
import { TokenIndex } from '../src/store/token-index';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const BOOT = 'timing-bootstrap-secret-0123456789abcdefghijklmnopqrstuvwxyz';
const bootstrapConfig: BootstrapConfig = { token: BOOT, scopes: ['workflows:read'], expiresAt: undefined };

/** Random tokens, many sharing a prefix of random length with `secret`. */
const near = (secret: string): fc.Arbitrary<string> =>
  fc.oneof(
    fc.tuple(fc.nat({ max: secret.length }), fc.string({ minLength: 1, maxLength: 80 })).map(([k, tail]) => secret.slice(0, k) + tail),
    fc.string({ maxLength: 200 }),
    fc.constant(secret),
    fc.constant(secret.slice(0, -1)),
  );

test(`bootstrap token (${RUNS} random candidates): compared once, with timingSafeEqual, over two 32-byte digests`, (t) => {
  const calls: Array<[number, number]> = [];
  const original = crypto.timingSafeEqual;
  crypto.timingSafeEqual = ((a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
    calls.push([a.byteLength, b.byteLength]);
    return original(a, b);
  }) as typeof crypto.timingSafeEqual;
  t.after(() => void (crypto.timingSafeEqual = original));
  const authn = createBootstrapAuthenticator(bootstrapConfig);
  fc.assert(
    fc.property(near(BOOT), (token) => {
      calls.length = 0;
      const r = authn.authenticate(token, Date.now()) as { kind: string };
      assert.deepEqual(calls, [[32, 32]], `token of length ${token.length}`);
      assert.equal(r.kind, token === BOOT ? 'identified' : 'skip');
    }),
    { numRuns: RUNS },
  );
});

test('no presented token takes a slower path: near-misses of the bootstrap and of a service token cost what random tokens cost', async (t) => {
  const svcSecret = generateSecret();
  const now = new Date();
  const row = { id: 'svc', secret_hash: hashSecret(svcSecret), scopes: ['workflows:read'], workspaces: ['*'], issued_at: now, updated_at: now, use_count: 0 };
  let queries = 0;
  const db = {
    kind: 'embedded',
    query: async () => {
      queries += 1;
      return [row];
    },
  } as unknown as Db;
  const index = new TokenIndex(db, pino({ level: 'silent' }), { pollIntervalMs: 0 });
  await index.resync();
  // The chain's first two kinds, called the way the chain calls them, synchronously: microtask
  // scheduling would be most of what a promise-based loop measures.
  const kinds = [createBootstrapAuthenticator(bootstrapConfig), createServiceTokenAuthenticator(index)];
  const authenticate = (token: string): string => {
    for (const k of kinds) {
      const r = k.authenticate(token, Date.now()) as { kind: string };
      if (r.kind !== 'skip') return r.kind;
    }
    return 'skip';
  };
  assert.equal((await createAuthenticatorChain(kinds).authenticate(svcSecret, Date.now())).kind, 'identified', 'the fixture works');
  const queriesAfterLoad = queries;

  // Classes of presented tokens, all misses (the secrets themselves are not timed).
  const rnd = (n: number): string => crypto.randomBytes(n).toString('base64url').slice(0, n);
  const classes: Record<string, () => string> = {
    'random, same length as the bootstrap token': () => rnd(BOOT.length),
    'bootstrap token with its last character changed': () => `${BOOT.slice(0, -1)}${BOOT.endsWith('x') ? 'y' : 'x'}`,
    'bootstrap prefix, then random': () => BOOT.slice(0, BOOT.length - 8) + rnd(8),
    'random, service-token shaped': () => rnd(43),
    'service token with its last character changed': () => `${svcSecret.slice(0, -1)}${svcSecret.endsWith('A') ? 'B' : 'A'}`,
  };
  const names = Object.keys(classes);
  const perBatch = 2000;
  const batches = Object.fromEntries(names.map((n) => [n, Array.from({ length: perBatch }, classes[n]!)]));
  for (const n of names) for (const token of batches[n]!.slice(0, 200)) assert.equal(authenticate(token), 'skip', n); // warm-up, and all are misses
  // Each round times every class once, in random order; a class's cost is its time relative to the
  // round's mean, so load from other processes (which moves whole rounds) cancels out.
  const relative: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const absolute: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < 30; round++) {
    const times: Record<string, number> = {};
    for (const name of [...names].sort(() => Math.random() - 0.5)) {
      const batch = batches[name]!;
      const t0 = performance.now();
      for (let i = 0; i < batch.length; i++) authenticate(batch[i]!);
      times[name] = (performance.now() - t0) / perBatch;
    }
    const mean = names.reduce((a, n) => a + times[n]!, 0) / names.length;
    for (const n of names) {
      relative[n]!.push(times[n]! / mean);
      absolute[n]!.push(times[n]!);
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const medians = Object.fromEntries(names.map((n) => [n, median(relative[n]!)]));
  t.diagnostic(`median µs per call: ${JSON.stringify(Object.fromEntries(names.map((n) => [n, +(median(absolute[n]!) * 1000).toFixed(2)])))}; relative to the round mean: ${JSON.stringify(Object.fromEntries(Object.entries(medians).map(([k, v]) => [k, +v.toFixed(3)])))}`);
  assert.equal(queries, queriesAfterLoad, 'a presented token caused a database query');
  const lo = Math.min(...Object.values(medians));
  const hi = Math.max(...Object.values(medians));
  // A database round trip or any other slow path on a miss costs 10-100x a hash lookup; the bound
  // leaves room for scheduling noise on a shared machine, not for a different code path.
  assert.ok(hi / lo < 2, `slowest class ${((hi / lo - 1) * 100).toFixed(0)} % slower than the fastest`);
});
