import type { Db, Queryable } from '../store/db';
import { notifyAssertionKeyChange } from '../store/notify';
import { createPublicKey } from 'node:crypto';
import type { JWK } from 'jose';
import { ASSERTION_ALGS, type AssertionAlg } from './key-file';
import { generatePrivatePem, publicJwkOf, RETIRE_MARGIN_MS } from './keys';

/** A row of `assertion_keys` (instants as epoch ms on the database clock). */
export interface KeyRow {
  readonly kid: string;
  readonly alg: AssertionAlg;
  readonly privatePem: string;
  readonly publicJwk: JWK;
  readonly signsFrom: number;
  readonly retireAfter?: number | undefined;
}

const LOCK_SQL = `SELECT pg_advisory_xact_lock(hashtext('orcheo-authz-assertion-keys:' || current_schema()))`;
const MS = (col: string): string => `(extract(epoch FROM ${col}) * 1000)::float8 AS ${col}`;

/** The keys still published (not yet past `retire_after`). */
export async function loadKeyRows(db: Queryable): Promise<KeyRow[]> {
  const rows = await db.query<Record<string, unknown>>(
    `SELECT kid, alg, private_pem, public_jwk, ${MS('signs_from')}, ${MS('retire_after')} FROM assertion_keys WHERE retire_after IS NULL OR retire_after > clock_timestamp() ORDER BY signs_from`,
  );
  return rows
    .filter((r) => ASSERTION_ALGS.includes(r.alg as AssertionAlg))
    .map((r) => ({
      kid: String(r.kid),
      alg: r.alg as AssertionAlg,
      privatePem: String(r.private_pem),
      publicJwk: (typeof r.public_jwk === 'string' ? JSON.parse(r.public_jwk) : r.public_jwk) as JWK,
      signsFrom: Number(r.signs_from),
      retireAfter: r.retire_after === null || r.retire_after === undefined ? undefined : Number(r.retire_after),
    }));
}

async function insertKey(tx: Queryable, alg: AssertionAlg, publishAheadMs: number): Promise<{ kid: string; signsFrom: number }> {
  const { pem } = generatePrivatePem(alg);
  const jwk = await publicJwkOf(createPublicKey(pem), alg);
  const rows = await tx.query<{ signs_from: number }>(
    `INSERT INTO assertion_keys (kid, alg, private_pem, public_jwk, signs_from)
     VALUES ($1, $2, $3, $4::jsonb, clock_timestamp() + ($5::float8 * interval '1 millisecond'))
     RETURNING ${MS('signs_from')}`,
    [jwk.kid, alg, pem, JSON.stringify(jwk), publishAheadMs],
  );
  return { kid: jwk.kid!, signsFrom: Number(rows[0]!.signs_from) };
}

/**
 * Makes sure a current key exists; replicas starting together create exactly one (advisory lock).
 * Returns true when this call created it.
 */
export async function ensureKey(db: Db, alg: AssertionAlg = 'ES256'): Promise<boolean> {
  return db.transaction(async (tx) => {
    await tx.query(LOCK_SQL);
    const cur = await tx.query(`SELECT 1 FROM assertion_keys WHERE retire_after IS NULL LIMIT 1`);
    if (cur.length > 0) return false;
    await insertKey(tx, alg, 0);
    await notifyAssertionKeyChange(tx);
    return true;
  });
}

export interface RotateResult {
  readonly kid: string;
  readonly alg: AssertionAlg;
  /** Epoch ms when the new key starts signing. */
  readonly signsFrom: number;
  /** Keys that stop being published once their last assertion has expired. */
  readonly retiring: ReadonlyArray<{ readonly kid: string; readonly retireAfter: number }>;
}

/**
 * Adds a key published now that signs after `publishAheadMs`; every current key gets a
 * `retire_after` one assertion lifetime (plus a clock-skew margin) past that instant, so each
 * assertion it signed still verifies until it expires. Long-retired rows are deleted.
 */
export async function rotateKey(db: Db, opts: { publishAheadMs: number; ttlMs: number; alg?: AssertionAlg }): Promise<RotateResult> {
  const alg = opts.alg ?? 'ES256';
  return db.transaction(async (tx) => {
    await tx.query(LOCK_SQL);
    const created = await insertKey(tx, alg, opts.publishAheadMs);
    const retired = await tx.query<{ kid: string; retire_after: number }>(
      `UPDATE assertion_keys SET retire_after = to_timestamp($1::float8 / 1000) + ($2::float8 * interval '1 millisecond')
       WHERE retire_after IS NULL AND kid <> $3 RETURNING kid, ${MS('retire_after')}`,
      [created.signsFrom, opts.ttlMs + RETIRE_MARGIN_MS, created.kid],
    );
    await tx.query(`DELETE FROM assertion_keys WHERE retire_after < clock_timestamp() - interval '1 day'`);
    await notifyAssertionKeyChange(tx);
    return { kid: created.kid, alg, signsFrom: created.signsFrom, retiring: retired.map((r) => ({ kid: String(r.kid), retireAfter: Number(r.retire_after) })) };
  });
}
