import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { createPgDb } from '../src/store/pg';
import { TokenIndex } from '../src/store/token-index';
import { closedPort } from './helpers/spawn';

test('the token index logs once when the store is lost, not at every poll', async (t) => {
  const lines: Array<{ msg: string }> = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const db = createPgDb(`postgres://postgres@127.0.0.1:${await closedPort()}/test`, logger);
  t.after(() => db.close?.());
  const index = new TokenIndex(db, logger, { pollIntervalMs: 0 });
  for (let i = 0; i < 5; i++) await index.sync();
  assert.equal(index.syncFailures, 5);
  const failed = lines.filter((l) => l.msg.startsWith('token index sync failed'));
  assert.equal(failed.length, 1, JSON.stringify(lines.map((l) => l.msg)));
});
