/** What the admin API tests share: an app per test on its own schema, an authenticated client, direct SQL. */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { Client } from 'pg';
import { startTestApp, type TestApp } from './app';
import { PG_SKIP_REASON, pgReachable } from './pg';
import { adminRequest } from './spawn';

export const BOOT = 'bootstrap-secret-for-tests-0123456789';
export const BOOT_ENV = { ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT, ORCHEO_AUTH_MODE: 'required' };

/** Starts an app in its own schema (stopped and dropped after the test), or skips without Postgres. */
export async function appFor(t: TestContext, env: Record<string, string> = BOOT_ENV): Promise<TestApp | undefined> {
  if (!(await pgReachable())) {
    t.skip(PG_SKIP_REASON);
    return undefined;
  }
  const a = await startTestApp(env);
  t.after(() => a.stop());
  return a;
}

export const base = (a: TestApp) => `http://127.0.0.1:${a.app.httpPort}`;
export const api = (a: TestApp, method: string, path: string, opts: Parameters<typeof adminRequest>[3] = {}) => adminRequest(base(a), method, path, { token: BOOT, ...opts });

/** A Check of GET /api/ping (authentication only) with `token`. */
export const checkWith = (a: TestApp, token: string, path = '/api/ping', method = 'GET') => a.client.check({ method, path, headers: { authorization: `Bearer ${token}` } });

/** One query on its own connection to `url` (a test schema's), read past the service. */
export async function queryUrl<T = Record<string, unknown>>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as T[];
  } finally {
    await c.end();
  }
}

export const sql = <T = Record<string, unknown>>(a: TestApp, text: string, params: unknown[] = []): Promise<T[]> => queryUrl<T>(a.schema!.url, text, params);

export function assertSecurityHeaders(h: Headers): void {
  assert.equal(h.get('cache-control'), 'no-store');
  assert.equal(h.get('x-content-type-options'), 'nosniff');
  assert.equal(h.get('x-frame-options'), 'DENY');
}
