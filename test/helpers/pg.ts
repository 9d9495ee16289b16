import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/** The Postgres the machine (and CI) provides; override with TEST_DATABASE_URL. */
export const PG_BASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

let reachable: Promise<boolean> | undefined;

export function pgReachable(): Promise<boolean> {
  reachable ??= (async () => {
    const c = new Client({ connectionString: PG_BASE_URL, connectionTimeoutMillis: 2000 });
    try {
      await c.connect();
      await c.query('SELECT 1');
      return true;
    } catch (err) {
      // CI always has Postgres: there a missing database is a failure, never a quiet skip.
      if (process.env.CI_REQUIRE_BACKENDS) throw new Error(`CI_REQUIRE_BACKENDS is set but Postgres is unreachable: ${(err as Error).message}`);
      return false;
    } finally {
      await c.end().catch(() => undefined);
    }
  })();
  return reachable;
}

export const PG_SKIP_REASON = `Postgres not reachable at ${PG_BASE_URL.replace(/\/\/[^@]*@/, '//')} (set TEST_DATABASE_URL)`;

export interface TestSchema {
  /** A connection URL whose search_path is the test's own schema. */
  readonly url: string;
  readonly schema: string;
  drop(): Promise<void>;
}

/** A fresh schema per test, so tests never see each other's tokens; dropped afterwards. */
export async function createTestSchema(prefix = 't'): Promise<TestSchema> {
  const schema = `authz_${prefix}_${randomBytes(6).toString('hex')}`;
  const c = new Client({ connectionString: PG_BASE_URL });
  await c.connect();
  await c.query(`CREATE SCHEMA "${schema}"`);
  await c.end();
  const sep = PG_BASE_URL.includes('?') ? '&' : '?';
  return {
    schema,
    url: `${PG_BASE_URL}${sep}options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    async drop() {
      const d = new Client({ connectionString: PG_BASE_URL });
      await d.connect();
      await d.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await d.end();
    },
  };
}
