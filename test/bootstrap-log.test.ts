import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { bootstrapUseLog } from '../src/authn/bootstrap';

function memoryLogger(): { logger: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const out: string[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _enc, cb) => (out.push(chunk.toString('utf8')), cb()) });
  return { logger: pino({ level: 'info' }, sink), lines: () => out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

// The interval is an hour: the test flushes by hand, no timer ever fires.
const HOUR = 3_600_000;

test('bootstrap uses: the first logged at once, then one line per interval with counts', () => {
  const { logger, lines } = memoryLogger();
  const log = bootstrapUseLog(logger, HOUR);
  try {
    log.onUse(true);
    assert.deepStrictEqual(lines().map((l) => [l.msg, l.accepted, l.rejected]), [['bootstrap token used', 1, 0]]);
    for (let i = 0; i < 500; i++) log.onUse(i % 5 !== 0);
    assert.equal(lines().length, 1, 'uses after the first wait for the interval');
    log.flush();
    const last = lines().at(-1)!;
    assert.deepStrictEqual([last.msg, last.accepted, last.rejected, last.interval_s, last.level], ['bootstrap token used', 400, 100, 3600, 40]);
    log.flush();
    assert.equal(lines().length, 2, 'no line for an interval without uses');
    log.onUse(false);
  } finally {
    log.stop();
  }
  assert.deepStrictEqual(lines().map((l) => [l.accepted, l.rejected]), [[1, 0], [400, 100], [0, 1]], 'stop flushes what is left');
});
