/**
 * The token service on a real Postgres: each write is one transaction (row + audit + NOTIFY), the
 * injected clock and id generator decide instants and ids, and a failure part-way leaves nothing,
 * neither in the database nor in the index.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { createLogger } from '../src/log';
import { StoreUnavailableError, type Db, type Queryable } from '../src/store/db';
import { migrate } from '../src/store/migrations';
import { createPgDb } from '../src/store/pg';
import type { TokenRecord } from '../src/store/records';
import { createTokenService, type TokenServiceDeps } from '../src/tokens/service';
import { queryUrl } from './helpers/admin-api';
import { createTestSchema, PG_SKIP_REASON, pgReachable, type TestSchema } from './helpers/pg';
import { startTcpProxy, viaProxy, type TcpProxy } from './helpers/tcp-proxy';

const ACTOR = { subject: 'admin-1', type: 'service', clientIp: '10.0.0.9', userAgent: 'test' };
const T0 = Date.parse('2030-01-01T00:00:00Z');

interface Env {
  readonly schema: TestSchema;
  readonly proxy: TcpProxy;
  readonly db: Db;
  readonly applied: TokenRecord[];
  sql<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  service(over?: Partial<TokenServiceDeps>): ReturnType<typeof createTokenService>;
}

/** A migrated schema reached through a TCP proxy (the test reads it directly); an index that records. */
async function setup(t: TestContext): Promise<Env | undefined> {
  if (!(await pgReachable())) return void t.skip(PG_SKIP_REASON);
  const schema = await createTestSchema('svc');
  t.after(() => schema.drop());
  const target = new URL(schema.url);
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  t.after(() => proxy.close());
  const logger = createLogger('warn', { write: () => undefined });
  const db = createPgDb(viaProxy(schema.url, proxy), logger);
  t.after(() => db.close());
  await migrate(db);
  const applied: TokenRecord[] = [];
  let n = 0;
  return {
    schema,
    proxy,
    db,
    applied,
    sql: (text, params) => queryUrl(schema.url, text, params),
    service: (over = {}) => createTokenService({ db, logger, index: { apply: (r) => void applied.push(r) }, clock: async () => T0, newId: () => `gen-${++n}`, ...over }),
  };
}

const rowsOf = (e: Env) => e.sql<{ id: string; revoked_at: Date | null; rotated_to: string | null }>('SELECT id, revoked_at, rotated_to FROM service_tokens ORDER BY id');
const auditOf = (e: Env) => e.sql<{ event: string; token_id: string; occurred_at: Date; actor: string }>('SELECT event, token_id, occurred_at, actor FROM auth_audit_events ORDER BY id');

test('create, rotate, revoke: instants from the injected clock, ids from the generator, one audit row each, the index updated', async (t) => {
  const e = await setup(t);
  if (!e) return;
  const s = e.service();
  const { record } = await s.create({ scopes: ['workflows:read'], workspaces: [], expiresIn: 3600 }, ACTOR);
  assert.equal(record.id, 'gen-1');
  assert.equal(record.issuedAt, T0);
  assert.equal(record.expiresAt, T0 + 3600_000);
  const rotated = await s.rotate('gen-1', { overlap: 60 }, ACTOR);
  assert.equal(rotated.previous.id, 'gen-1~r1');
  assert.equal(rotated.previous.expiresAt, T0 + 60_000);
  const revoked = await s.revoke('gen-1', 'done', ACTOR);
  assert.deepEqual(revoked.map((r) => [r.id, r.revokedAt]), [['gen-1', T0], ['gen-1~r1', T0]]);
  assert.deepEqual(e.applied.map((r) => r.id), ['gen-1', 'gen-1~r1', 'gen-1', 'gen-1', 'gen-1~r1'], 'rotation applies the old row first');
  const audit = await auditOf(e);
  assert.deepEqual(audit.map((a) => `${a.event}:${a.token_id}`), ['token.created:gen-1', 'token.rotated:gen-1', 'token.revoked:gen-1', 'token.revoked:gen-1~r1']);
  assert.ok(audit.every((a) => a.occurred_at.getTime() === T0 && a.actor === 'admin-1'), 'audit rows carry the write instant');
  assert.equal((await s.get('gen-1'))?.rotatedFrom, 'gen-1~r1');
  assert.deepEqual((await s.list({ statuses: ['Revoked'], nowMs: T0 })).map((x) => [x.record.id, x.rotatedFrom]), [['gen-1', 'gen-1~r1'], ['gen-1~r1', undefined]]);
});

test('a constraint violation in the audit insert undoes the write: no row changed, nothing applied to the index', async (t) => {
  const e = await setup(t);
  if (!e) return;
  const s = e.service();
  await s.create({ id: 'keep', scopes: [], workspaces: [] }, ACTOR);
  await e.sql("ALTER TABLE auth_audit_events ADD CONSTRAINT no_more CHECK (event = 'token.created')");
  const before = await rowsOf(e);
  e.applied.length = 0;
  await assert.rejects(s.rotate('keep', { overlap: 0 }, ACTOR), (err: { code?: string }) => err.code === '23514');
  await assert.rejects(s.revoke('keep', undefined, ACTOR), (err: { code?: string }) => err.code === '23514');
  assert.deepEqual(await rowsOf(e), before, 'the renamed and the new row of the rotation are gone');
  assert.deepEqual(e.applied, []);
  assert.equal((await auditOf(e)).length, 1);
});

test('the connection lost mid-transaction: StoreUnavailableError, nothing written; the store works again once back', async (t) => {
  const e = await setup(t);
  if (!e) return;
  // The clock runs inside the transaction, after BEGIN: cutting there fails every later statement.
  let cutNow = false;
  const clock = async (_tx: Queryable) => {
    if (cutNow) e.proxy.cut();
    return T0;
  };
  const s = e.service({ clock });
  await s.create({ id: 'base', scopes: [], workspaces: [] }, ACTOR);
  const before = await rowsOf(e);
  e.applied.length = 0;
  cutNow = true;
  await assert.rejects(s.create({ id: 'lost', scopes: [], workspaces: [] }, ACTOR), StoreUnavailableError);
  e.proxy.restore();
  await assert.rejects(s.rotate('base', { overlap: 0 }, ACTOR), StoreUnavailableError);
  e.proxy.restore();
  cutNow = false;
  assert.deepEqual(await rowsOf(e), before);
  assert.equal((await auditOf(e)).length, 1);
  assert.deepEqual(e.applied, []);
  // The pool drops the broken connections: the next write opens a fresh one.
  assert.equal((await s.create({ id: 'after', scopes: [], workspaces: [] }, ACTOR)).record.id, 'after');
});

test('an unreachable store is StoreUnavailableError for reads too, not a driver error', async (t) => {
  const e = await setup(t);
  if (!e) return;
  const s = e.service();
  e.proxy.cut();
  await assert.rejects(s.list({}), StoreUnavailableError);
  await assert.rejects(s.get('x'), StoreUnavailableError);
  await assert.rejects(s.audit({}), StoreUnavailableError);
  e.proxy.restore();
  assert.deepEqual(await s.list({}), []);
});
