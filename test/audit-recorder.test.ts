/**
 * The audit trail's batched counters on a real Postgres: repeated keys fold into one row per key and
 * flush, a flush starts new rows (a counter written once is never bumped again), and past 5 000
 * distinct keys in one window new keys fold into one overflow row per event. The expected rows are
 * tallied here, independently of the recorder.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { createLogger } from '../src/log';
import { AuditRecorder, listAuditEvents, type AuditEventName } from '../src/store/audit';
import type { Db } from '../src/store/db';
import { migrate } from '../src/store/migrations';
import { createPgDb } from '../src/store/pg';
import { createTestSchema, PG_SKIP_REASON, pgReachable } from './helpers/pg';

async function setup(t: TestContext): Promise<{ db: Db; recorder: AuditRecorder; rows(): Promise<Map<string, number>> } | undefined> {
  if (!(await pgReachable())) return void t.skip(PG_SKIP_REASON);
  const schema = await createTestSchema('audit');
  t.after(() => schema.drop());
  const db = createPgDb(schema.url, createLogger('warn', { write: () => undefined }));
  t.after(() => db.close());
  await migrate(db);
  let clock = Date.parse('2030-01-01T00:00:00Z');
  // Never started: the test flushes by hand, with its own clock.
  const recorder = new AuditRecorder(db, createLogger('warn', { write: () => undefined }), 3_600_000, () => (clock += 1000));
  const rows = async (): Promise<Map<string, number>> => {
    const out = new Map<string, number>();
    for (const r of await db.query<{ event: string; token_id: string | null; reason: string | null; count: string | number }>('SELECT event, token_id, reason, count FROM auth_audit_events')) {
      const k = `${r.event}|${r.token_id ?? ''}|${r.reason ?? ''}`;
      out.set(k, (out.get(k) ?? 0) + Number(r.count));
    }
    return out;
  };
  return { db, recorder, rows };
}

test('repeated and interleaved keys fold into one row per key', async (t) => {
  const env = await setup(t);
  if (!env) return;
  const calls: Array<[AuditEventName, string | undefined, string | undefined]> = [
    ['token.used', 'a', undefined], ['token.used', 'a', undefined], ['token.used', 'b', undefined], ['token.used', 'a', undefined],
    ['auth.failure', undefined, 'auth.invalid_token'], ['auth.failure', undefined, 'auth.invalid_token'], ['auth.failure', 'a', 'auth.missing_scope'],
    ['token.used', 'b', undefined], ['auth.failure', undefined, 'auth.invalid_token'],
  ];
  const want = new Map<string, number>();
  for (const [e, id, reason] of calls) {
    env.recorder.count(e, id, reason);
    const k = `${e}|${id ?? ''}|${reason ?? ''}`;
    want.set(k, (want.get(k) ?? 0) + 1);
  }
  await env.recorder.flush();
  assert.deepEqual(await env.rows(), want);
  assert.equal((await listAuditEvents(env.db, { limit: 1000 })).length, want.size, 'one row per key');
});

test('a flush starts new rows: the next count of the same key is a row of its own', async (t) => {
  const env = await setup(t);
  if (!env) return;
  env.recorder.count('token.used', 'a');
  env.recorder.count('token.used', 'a');
  await env.recorder.flush();
  env.recorder.count('token.used', 'a');
  await env.recorder.flush();
  const counts = (await listAuditEvents(env.db, { limit: 1000 })).map((r) => r.count).sort();
  assert.deepEqual(counts, [1, 2]);
});

test('past 5 000 distinct keys, new keys fold into one overflow row per event', async (t) => {
  const env = await setup(t);
  if (!env) return;
  for (let i = 0; i < 5000; i++) env.recorder.count('auth.failure', `t-${i}`, 'auth.invalid_token');
  // A key already held still counts under itself; new ones (repeated, as the hot path repeats) go to overflow.
  env.recorder.count('auth.failure', 't-7', 'auth.invalid_token');
  for (let i = 0; i < 3; i++) env.recorder.count('auth.failure', 'new-1', 'auth.invalid_token');
  env.recorder.count('auth.failure', 'new-2', 'auth.invalid_token');
  await env.recorder.flush();
  const rows = await env.rows();
  assert.equal(rows.get('auth.failure|t-7|auth.invalid_token'), 2);
  assert.equal(rows.get('auth.failure||overflow'), 4);
  assert.equal(rows.has('auth.failure|new-1|auth.invalid_token'), false);
  assert.equal(rows.size, 5001);
});
