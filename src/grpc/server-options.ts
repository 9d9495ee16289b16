import type { ChannelOptions } from '@grpc/grpc-js';

/**
 * How long one HTTP/2 connection may live. A client that trips Node's rapid-reset protection
 * (CVE-2023-44487: HEADERS + RST_STREAM in a burst) gets a GOAWAY from nghttp2, which then stops
 * reading, but nothing closes the socket: without these bounds it stays open (CLOSE-WAIT once the
 * client half-closes), one file descriptor per abusive connection, for as long as the process runs.
 * The idle timeout closes it once no stream is open; one that holds a stream open is cut by the age
 * limit plus its grace. A busy connection (Envoy's) is never idle, and at its age it gets a GOAWAY
 * that lets in-flight calls finish while Envoy opens a new one.
 */
export interface ConnectionLimits {
  /** grpc.max_connection_idle_ms: closed after this long without an open stream. */
  readonly idleMs?: number | undefined;
  /** grpc.max_connection_age_ms (±10% jitter): then GOAWAY, new calls go to a new connection... */
  readonly maxAgeMs?: number | undefined;
  /** grpc.max_connection_age_grace_ms: ...and calls still open after this long are cut. */
  readonly ageGraceMs?: number | undefined;
}

/** Idle 5 min; age 1 h, then 30 s for in-flight Checks (Envoy's timeouts are far shorter). */
export const CONNECTION_LIMITS = { idleMs: 300_000, maxAgeMs: 3_600_000, ageGraceMs: 30_000 } as const;

/**
 * The grpc.Server options: the service's, and the bench baseline's (test/bench/baseline-server.ts),
 * so the two differ only in their handlers.
 */
export function serverOptions(conn: ConnectionLimits = {}): ChannelOptions {
  return {
    // Envoy keeps long-lived HTTP/2 connections; bound what one client can hold open.
    'grpc.max_concurrent_streams': 10_000,
    'grpc.max_receive_message_length': 4 * 1024 * 1024,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.max_connection_idle_ms': conn.idleMs ?? CONNECTION_LIMITS.idleMs,
    'grpc.max_connection_age_ms': conn.maxAgeMs ?? CONNECTION_LIMITS.maxAgeMs,
    'grpc.max_connection_age_grace_ms': conn.ageGraceMs ?? CONNECTION_LIMITS.ageGraceMs,
  };
}
