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

/**
 * A spy, not a mock: the real timingSafeEqual answers every call, the spy only records the lengths.
 * Watching the call is the one way to see the structure without a wall clock; t.mock restores the
 * function when the test ends (even when it fails), and `node --test` runs each file in its own
 * process, so nothing outside this test sees the spy.
 */
test(`bootstrap token (${RUNS} random candidates): compared once, with timingSafeEqual, over two 32-byte digests`, (t) => {
  const spy = t.mock.method(crypto, 'timingSafeEqual');
  const authn = createBootstrapAuthenticator(bootstrapConfig);
  fc.assert(
    fc.property(near(BOOT), (token) => {
      spy.mock.resetCalls();
      const r = authn.authenticate(token, Date.now()) as { kind: string };
      const lengths = spy.mock.calls.map((c) => (c.arguments as NodeJS.ArrayBufferView[]).map((x) => x.byteLength));
      assert.deepEqual(lengths, [[32, 32]], `token of length ${token.length}`);
      assert.equal(r.kind, token === BOOT ? 'identified' : 'skip');
    }),
    { numRuns: RUNS },
  );
});
