import type { Db } from './db';

/**
 * Versioned, append-only migrations. Never edit a released entry: add a new one. Each runs in one
 * transaction under an advisory lock, so replicas starting together apply it exactly once.
 */
export const MIGRATIONS: ReadonlyArray<{ readonly version: number; readonly name: string; readonly sql: string }> = [
  {
    version: 1,
    name: 'service tokens and audit trail',
    sql: `
      CREATE TABLE service_tokens (
        id                text PRIMARY KEY,
        secret_hash       char(64) NOT NULL UNIQUE,
        scopes            text[] NOT NULL DEFAULT '{}',
        workspaces        text[] NOT NULL DEFAULT '{}',
        issued_at         timestamptz NOT NULL DEFAULT now(),
        expires_at        timestamptz,
        revoked_at        timestamptz,
        revocation_reason text,
        rotated_to        text,
        last_used_at      timestamptz,
        use_count         bigint NOT NULL DEFAULT 0,
        created_by        text,
        updated_at        timestamptz NOT NULL DEFAULT clock_timestamp()
      );
      CREATE INDEX service_tokens_updated_at ON service_tokens (updated_at);
      CREATE TABLE auth_audit_events (
        id           bigserial PRIMARY KEY,
        occurred_at  timestamptz NOT NULL DEFAULT now(),
        event        text NOT NULL,
        token_id     text,
        actor        text,
        client_ip    text,
        user_agent   text,
        reason       text,
        count        integer NOT NULL DEFAULT 1,
        details      jsonb
      );
      CREATE INDEX auth_audit_events_token ON auth_audit_events (token_id, occurred_at);
    `,
  },
  {
    version: 2,
    name: 'identity assertion signing keys',
    sql: `
      CREATE TABLE assertion_keys (
        kid          text PRIMARY KEY,
        alg          text NOT NULL,
        private_pem  text NOT NULL,
        public_jwk   jsonb NOT NULL,
        created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
        signs_from   timestamptz NOT NULL,
        retire_after timestamptz
      );
    `,
  },
];

export interface MigrationResult {
  readonly applied: number[];
  readonly current: number;
}

export async function migrate(db: Db): Promise<MigrationResult> {
  return db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext('orcheo-authz:' || current_schema()))`);
    await tx.query(`CREATE TABLE IF NOT EXISTS orcheo_authz_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set((await tx.query<{ version: number }>('SELECT version FROM orcheo_authz_migrations')).map((r) => Number(r.version)));
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      await tx.exec(m.sql);
      await tx.query('INSERT INTO orcheo_authz_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    return { applied, current: Math.max(0, ...done, ...applied) };
  });
}

/** The schema version the database is at, or 0 before any migration. Used by readiness checks. */
export async function schemaVersion(db: Db): Promise<number> {
  const t = await db.query<{ t: string | null }>(`SELECT to_regclass('orcheo_authz_migrations')::text AS t`);
  if (!t[0]?.t) return 0;
  const r = await db.query<{ v: number | null }>('SELECT max(version) AS v FROM orcheo_authz_migrations');
  return Number(r[0]?.v ?? 0);
}
