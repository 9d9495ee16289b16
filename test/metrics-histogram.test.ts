/**
 * The Check-duration histogram is tallied in plain numbers (src/admin/metrics.ts TalliedHistogram)
 * and exposed through prom-client's registry: its exposition must be exactly what prom-client's own
 * Histogram prints for the same observations (the oracle), bounds and bucket edges included.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { TalliedHistogram } from '../src/admin/metrics';

const BOUNDS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5];

function pair(): { ours: TalliedHistogram; theirs: Histogram; a: Registry; b: Registry } {
  const a = new Registry();
  const b = new Registry();
  const ours = new TalliedHistogram(a, 'x_seconds', 'help text', BOUNDS);
  const theirs = new Histogram({ name: 'x_seconds', help: 'help text', buckets: BOUNDS, registers: [b] });
  return { ours, theirs, a, b };
}

describe('TalliedHistogram', () => {
  it('prints what prom-client prints before any observation', async () => {
    const { a, b } = pair();
    assert.equal(await a.metrics(), await b.metrics());
  });

  it('prints what prom-client prints for values on, between, below and above the bounds', async () => {
    const { ours, theirs, a, b } = pair();
    // Each bound itself (le is inclusive), just above it, 0, a negative, and beyond the last bound.
    const values = [...BOUNDS, ...BOUNDS.map((x) => x * 1.0001), 0, -1, 0.75, 3, 1e-9];
    let seed = 7;
    for (let i = 0; i < 500; i++) values.push(((seed = (seed * 48271) % 2147483647) / 2147483647) * 0.6);
    for (const v of values) {
      ours.observe(v);
      theirs.observe(v);
    }
    const text = await a.metrics();
    assert.equal(text, await b.metrics());
    assert.match(text, new RegExp(`^x_seconds_count ${values.length}$`, 'm'));
  });

  it('reset() zeroes it, as registry.resetMetrics() expects, and keeps printing the series', async () => {
    // prom-client's own unlabelled histogram prints nothing after a reset until the next observation;
    // ours keeps the zero series (what it prints before any observation), so alerts never see a gap.
    const { ours, a } = pair();
    const fresh = await a.metrics();
    ours.observe(0.001);
    ours.observe(7);
    assert.notEqual(await a.metrics(), fresh);
    a.resetMetrics();
    assert.equal(await a.metrics(), fresh);
  });
});
