import { CodedError } from '../errors/api';

/**
 * The narrow query interface every store module talks to. Two implementations run the same SQL:
 * `pg` against a real Postgres, and PGlite's in-process API for the embedded default.
 */
export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Db extends Queryable {
  readonly kind: 'postgres' | 'embedded';
  /** Runs fn in one transaction: it commits fully or not at all. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Subscribes to a NOTIFY channel. `onReconnect` fires after the listening connection was lost and
   * re-established, since notifications sent in between are gone and the caller must resync.
   */
  listen(channel: string, onMessage: (payload: string) => void, onReconnect?: () => void): Promise<void>;
  close(): Promise<void>;
}

/**
 * Raised by a store operation when the database cannot be reached: connection refused or lost,
 * timeouts, server shutdown. Only this is a 503 `store.unavailable` (and exit 3 at start); any
 * other database error is a bug or a constraint and stays one.
 */
export class StoreUnavailableError extends CodedError<'store.unavailable'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('store.unavailable', message, options);
  }
}

const NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);
// 08xxx connection exceptions; 57P01-57P03 admin/crash shutdown, cannot connect now; 53300 too many connections.
const SQLSTATE = /^(08[0-9A-Z]{3}|57P0[123]|53300)$/;
// node-postgres and PGlite report these as plain Errors without a code.
const MESSAGES = /connection terminated|timeout exceeded when trying to connect|query read timeout|connection error and is not queryable|cannot use a pool after calling end|pglite is closed|client was closed/i;

/** Whether `err` says the database is unreachable (as opposed to a query or data error). */
export function isConnectionFailure(err: unknown): boolean {
  if (err instanceof StoreUnavailableError) return true;
  const e = err as { code?: unknown; message?: unknown; errors?: unknown } | null | undefined;
  if (typeof e?.code === 'string' && (NET_CODES.has(e.code) || SQLSTATE.test(e.code))) return true;
  // Connecting to `localhost` tries ::1 and 127.0.0.1: both refusals arrive in one AggregateError.
  if (Array.isArray(e?.errors) && e.errors.length > 0 && e.errors.every(isConnectionFailure)) return true;
  return typeof e?.message === 'string' && MESSAGES.test(e.message);
}

/** Rethrows a connection-class failure as StoreUnavailableError, anything else unchanged. */
export function classifyStoreError(err: unknown): never {
  if (err instanceof StoreUnavailableError || !isConnectionFailure(err)) throw err;
  throw new StoreUnavailableError(`token store unreachable: ${(err as Error).message || (err as { code?: string }).code || 'connection failed'}`, { cause: err });
}

/** Runs `op`, turning connection-class failures into StoreUnavailableError. */
export async function guarded<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    return classifyStoreError(err);
  }
}

/** What both drivers offer: `query` resolving to `{ rows }`. */
export interface DriverSession {
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
}

/**
 * The Queryable over a driver session (pg pool or client, PGlite or its transaction), with
 * connection failures classified. `exec` runs several statements; pg's `query` does that itself.
 */
export function queryable(session: DriverSession, exec: (sql: string) => Promise<unknown> = (sql) => session.query(sql)): Queryable {
  return {
    async query<T>(sql: string, params?: readonly unknown[]): Promise<T[]> {
      const r = await guarded(() => session.query(sql, params as unknown[] | undefined));
      return r.rows as T[];
    },
    async exec(sql: string): Promise<void> {
      await guarded(() => exec(sql));
    },
  };
}
