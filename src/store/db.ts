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

/** Raised by a store operation when the database cannot be reached or answered with an error. */
export class StoreUnavailableError extends Error {
  readonly code = 'store.unavailable' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** Quotes an identifier (schema names from tests and URLs) for safe interpolation. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
