/**
 * Deny lines are sampled per code (src/pipeline/decision-log.ts): at most ORCHEO_AUTH_DENY_LOG_RATE
 * `request denied` lines per code per second, the rest counted in one `request denied lines
 * suppressed` line; `all` writes every one; `would deny` (shadow) lines are never sampled. The
 * window's clock is injected; the app-level test goes through a real gRPC server and the app's own
 * configuration, and reads the lines the app wrote.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import pino from 'pino';
import { ConfigError, loadConfig } from '../src/config/load';
import { createDecisionLog } from '../src/pipeline/decision-log';
import type { Decision } from '../src/pipeline/decision';
import type { CheckInput } from '../src/pipeline/request';
import type { DenyCode } from '../src/errors/deny';
import { startTestApp } from './helpers/app';
import { logLines } from './helpers/explain';

function capture(): { logger: pino.Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _enc, cb) => (out.push(chunk.toString()), cb()) });
  const logger = pino({ level: 'info' }, sink);
  return { logger, lines: () => out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const input: CheckInput = { method: 'GET', path: '/api/x', query: '', headers: new Map(), sourceAddress: '10.0.0.1', contextExtensions: undefined };
const deny = (code: DenyCode, id: string): Decision =>
  ({ allow: false, requestId: id, input, requirement: undefined, error: undefined as never, tokenPresented: false, outcome: { decision: 'deny', code } }) as Decision;
const wouldDeny = (code: DenyCode, id: string): Decision =>
  ({ allow: true, requestId: id, input, requirement: undefined, outcome: { decision: 'allow', shadowCode: code } }) as unknown as Decision;
const ip = (): string => '10.0.0.1';

describe('deny log sampling', () => {
  test('past the rate within one second, denials of that code are counted, then summarised once', () => {
    let now = 1_000_000;
    const { logger, lines } = capture();
    const log = createDecisionLog(logger, 3, () => now);
    for (let i = 0; i < 10; i++) log.decided(deny('auth.missing_token', `m${i}`), ip);
    // Another code has its own budget.
    for (let i = 0; i < 2; i++) log.decided(deny('auth.invalid_token', `i${i}`), ip);
    let seen = lines();
    assert.deepEqual(seen.filter((l) => l.msg === 'request denied').map((l) => l.request_id), ['m0', 'm1', 'm2', 'i0', 'i1']);
    assert.equal(seen.filter((l) => l.msg === 'request denied lines suppressed').length, 0, 'no summary before the second is over');
    // The next second: the first denial rolls the window and the summary is written before it.
    now += 1000;
    log.decided(deny('auth.missing_token', 'next'), ip);
    seen = lines();
    const summary = seen.filter((l) => l.msg === 'request denied lines suppressed');
    assert.deepEqual(summary.map((l) => [l.code, l.suppressed]), [['auth.missing_token', 7]]);
    assert.equal(seen.at(-1)?.request_id, 'next', 'a new window logs again');
    log.flush();
    assert.equal(lines().filter((l) => l.msg === 'request denied lines suppressed').length, 1, 'nothing left to report');
  });

  test('flush writes the count of a burst that nothing followed', () => {
    const { logger, lines } = capture();
    const log = createDecisionLog(logger, 1, () => 5);
    for (let i = 0; i < 4; i++) log.decided(deny('auth.token_revoked', `r${i}`), ip);
    log.flush();
    assert.deepEqual(lines().map((l) => [l.msg, l.suppressed ?? l.request_id]), [['request denied', 'r0'], ['request denied lines suppressed', 3]]);
  });

  test('`all` (Infinity) writes every denial; shadow lines are never sampled', () => {
    const all = capture();
    const logAll = createDecisionLog(all.logger, Infinity, () => 0);
    for (let i = 0; i < 250; i++) logAll.decided(deny('auth.missing_token', `a${i}`), ip);
    assert.equal(all.lines().filter((l) => l.msg === 'request denied').length, 250);

    const shadow = capture();
    const logShadow = createDecisionLog(shadow.logger, 0, () => 0);
    for (let i = 0; i < 20; i++) logShadow.decided(wouldDeny('auth.missing_scope', `w${i}`), ip);
    logShadow.decided(deny('auth.missing_scope', 'd'), ip);
    logShadow.flush();
    const seen = shadow.lines();
    assert.equal(seen.filter((l) => l.msg === 'would deny').length, 20);
    assert.equal(seen.filter((l) => l.msg === 'request denied').length, 0, 'rate 0: no deny line');
    assert.deepEqual(seen.filter((l) => l.msg === 'request denied lines suppressed').map((l) => l.suppressed), [1]);
  });

  test('ORCHEO_AUTH_DENY_LOG_RATE: default 100, `all`, a number; anything else is a configuration error', () => {
    const base = { ORCHEO_AUTH_GRPC_ADDR: '127.0.0.1:0', ORCHEO_AUTH_HTTP_ADDR: '127.0.0.1:0' };
    assert.equal(loadConfig(base).log.denyRate, 100);
    assert.equal(loadConfig({ ...base, ORCHEO_AUTH_DENY_LOG_RATE: 'ALL' }).log.denyRate, Infinity);
    assert.equal(loadConfig({ ...base, ORCHEO_AUTH_DENY_LOG_RATE: '0' }).log.denyRate, 0);
    for (const bad of ['-1', 'lots', '1.5', '2000000']) {
      assert.throws(() => loadConfig({ ...base, ORCHEO_AUTH_DENY_LOG_RATE: bad }), (err: unknown) => err instanceof ConfigError && err.message.includes('ORCHEO_AUTH_DENY_LOG_RATE'), bad);
    }
  });

  test('through the service: rate 2, five denials in a burst → two lines and one count of three at stop', async () => {
    const t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_DENY_LOG_RATE: '2' });
    try {
      for (let i = 0; i < 5; i++) {
        const r = await t.client.check({ method: 'GET', path: '/api/workflows', headers: { 'x-request-id': `burst-${i}` } });
        assert.equal(r.status?.code, 16, 'every call is still denied');
      }
    } finally {
      await t.stop();
    }
    const lines = logLines(t.logs);
    const denied = lines.filter((l) => l.msg === 'request denied' && String(l.request_id).startsWith('burst-'));
    const suppressed = lines.filter((l) => l.msg === 'request denied lines suppressed');
    // Two lines within one second; were the calls spread over a second boundary, the rest still add up.
    assert.equal(denied.length + suppressed.reduce((n, l) => n + (l.suppressed as number), 0), 5);
    assert.ok(denied.length >= 2 && denied.length <= 4, `${denied.length} lines`);
    assert.ok(suppressed.length >= 1, 'the suppressed denials are reported');
  });
});
