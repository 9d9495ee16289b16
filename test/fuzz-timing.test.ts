/**
 * Timing side channels, with random inputs. Wall-clock measurements on a shared machine cannot
 * prove constant time, so the first property checks the structure that guarantees it (every
 * bootstrap comparison is one timingSafeEqual over two SHA-256 digests, whatever was presented).
 * Wall-clock comparisons belong in benchmarks, not in tests (this project's rule), so none is made
 * here; a miss never reaches the database (the in-memory index, test/hotpath.test.ts).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { createBootstrapAuthenticator } from '../src/authn/bootstrap';
import type { BootstrapConfig } from '../src/config/types';

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
