import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { App } from '../../src/app';
import { insertToken } from '../../src/store/tokens';
import { okHeaders, type CheckResult } from './grpc-client';

export const HEADER = 'x-orcheo-identity';
export const HOST = 'api.example.com';

export const jwksUrl = (app: App): URL => new URL(`http://127.0.0.1:${app.httpPort}/.well-known/jwks.json`);

/** The assertion an allow sets, or undefined. */
export function assertionOf(r: CheckResult, header = HEADER): string | undefined {
  return okHeaders(r)[header];
}

export function kidOf(jws: string): string {
  return String(decodeProtectedHeader(jws).kid);
}

export function claimsOf(jws: string): Record<string, any> {
  return decodeJwt(jws) as Record<string, any>;
}

/** Polls `fn` until it returns a value that is not undefined/false; fails after `timeoutMs` naming `what`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A service token in the app's store and index; returns its secret. */
export async function serviceToken(app: App, id: string, opts: { scopes?: string[]; workspaces?: string[]; expiresAt?: number } = {}): Promise<string> {
  const { record, secret } = await insertToken(app.db, { id, scopes: opts.scopes ?? ['workflows:read'], workspaces: opts.workspaces ?? ['ws-1'], expiresAt: opts.expiresAt });
  app.index.apply(record);
  return secret;
}

/** A Check of `GET /api/workflows` on host api.example.com, as Envoy sends it (host as `:authority`). */
export function req(token: string | undefined, extra: Record<string, string> = {}, contextExtensions?: Record<string, string>) {
  return {
    path: '/api/workflows',
    headers: { ':authority': HOST, ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra },
    ...(contextExtensions ? { contextExtensions } : {}),
  };
}

export async function fetchJson(url: URL | string): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(url);
  return { status: res.status, headers: res.headers, body: await res.json() };
}
