import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeHeapSnapshot } from 'node:v8';
import { hashSecret } from '../src/store/records';

/** Hashes a fresh secret and returns only a marker derived from it, so nothing here keeps it. */
function hashOnce(): { prefix: string; hash: string } {
  const rnd = randomBytes(16).toString('hex');
  const secret = `heapprobe${rnd}`;
  const h = hashSecret(secret);
  assert.equal(h, hashSecret(secret), 'stable');
  // Only the random part leaves (not a slice, which would keep the secret alive); the snapshot is
  // searched for the whole secret rebuilt after it is written.
  return { prefix: rnd, hash: h };
}

test('hashing a presented token keeps no copy of it in the heap (heap dumps hold no token)', (t) => {
  const { prefix, hash } = hashOnce();
  const file = join(tmpdir(), `orcheo-heap-${process.pid}.heapsnapshot`);
  t.after(() => rmSync(file, { force: true }));
  writeHeapSnapshot(file);
  const snap = readFileSync(file, 'utf8');
  assert.ok(snap.includes(hash), 'the snapshot does contain strings this test still holds');
  assert.ok(!snap.includes(`heapprobe${prefix}`), 'the plaintext token is retained somewhere');
});
