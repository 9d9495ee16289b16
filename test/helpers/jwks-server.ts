/**
 * A real HTTP JWKS / OpenID provider on 127.0.0.1:0 that a test drives: publish key sets, count
 * fetches, go down (HTTP 503 or connection reset) and back up, delay answers, set Cache-Control.
 * Also signing helpers, so tests mint tokens exactly as an IdP would.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import pino from 'pino';

export type DownMode = false | 'status' | 'reset';

export interface JwksServer {
  /** Base URL, also the OIDC issuer served by /.well-known/openid-configuration. */
  readonly url: string;
  readonly jwksUrl: string;
  setKeys(jwks: { keys: unknown[] }): void;
  setCacheControl(value: string | undefined): void;
  setDelay(ms: number): void;
  setDown(mode: DownMode): void;
  /** Overrides the discovery document (undefined: default pointing at /jwks with issuer = url). */
  setDiscovery(doc: Record<string, unknown> | undefined): void;
  readonly fetches: () => number;
  readonly discoveryFetches: () => number;
  /** Request line and authorization header of the last request, as received. */
  readonly lastRequest: () => { url: string; authorization: string | undefined } | undefined;
  close(): Promise<void>;
}

export async function startJwksServer(initial: { keys: unknown[] } = { keys: [] }): Promise<JwksServer> {
  let jwks = initial;
  let cacheControl: string | undefined;
  let delayMs = 0;
  let down: DownMode = false;
  let discovery: Record<string, unknown> | undefined;
  let fetches = 0;
  let discoveryFetches = 0;
  let lastRequest: { url: string; authorization: string | undefined } | undefined;
  const timers = new Set<NodeJS.Timeout>();

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    lastRequest = { url: req.url ?? '/', authorization: req.headers.authorization };
    if (path === '/jwks') fetches += 1;
    else if (path === '/.well-known/openid-configuration') discoveryFetches += 1;
    const answer = (): void => {
      if (down === 'reset') {
        req.socket.destroy();
        return;
      }
      if (down === 'status') {
        res.writeHead(503, { 'content-type': 'text/plain' }).end('down');
        return;
      }
      let body: unknown;
      if (path === '/jwks') body = jwks;
      else if (path === '/.well-known/openid-configuration') body = discovery ?? { issuer: base, jwks_uri: `${base}/jwks` };
      else {
        res.writeHead(404).end();
        return;
      }
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (cacheControl !== undefined) headers['cache-control'] = cacheControl;
      res.writeHead(200, headers).end(JSON.stringify(body));
    };
    if (delayMs > 0) {
      const t = setTimeout(() => {
        timers.delete(t);
        answer();
      }, delayMs);
      timers.add(t);
    } else answer();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: base,
    jwksUrl: `${base}/jwks`,
    setKeys: (next) => void (jwks = next),
    setCacheControl: (value) => void (cacheControl = value),
    setDelay: (ms) => void (delayMs = ms),
    setDown: (mode) => void (down = mode),
    setDiscovery: (doc) => void (discovery = doc),
    fetches: () => fetches,
    discoveryFetches: () => discoveryFetches,
    lastRequest: () => lastRequest,
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface TestKey {
  readonly alg: string;
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  /** SPKI PEM of the public key (for the HS256-with-public-key confusion attack). */
  readonly publicPem: string;
}

export async function makeKey(alg: string, kid: string): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicJwk, publicPem: await exportSPKI(publicKey) };
}

export function jwksOf(...keys: TestKey[]): { keys: JWK[] } {
  return { keys: keys.map((k) => k.publicJwk) };
}

export interface SignOptions {
  kid?: string | undefined;
  /** Extra protected header members (e.g. an embedded `jwk`). */
  header?: Record<string, unknown>;
}

/** Signs `payload` verbatim (no defaults added), with an asymmetric key or an HMAC secret. */
export async function sign(
  payload: JWTPayload,
  key: TestKey | { alg: string; secret: string | Uint8Array },
  opts: SignOptions = {},
): Promise<string> {
  const kid = 'kid' in opts ? opts.kid : 'kid' in key ? key.kid : undefined;
  const header = { ...opts.header, alg: key.alg, typ: 'JWT', ...(kid === undefined ? {} : { kid }) };
  const signingKey = 'secret' in key ? (typeof key.secret === 'string' ? new TextEncoder().encode(key.secret) : key.secret) : key.privateKey;
  return new SignJWT(payload).setProtectedHeader(header as { alg: string }).sign(signingKey);
}

/** A settable clock shared by the authenticator's key timing and authenticate(nowMs). */
export function manualClock(startMs = Date.UTC(2030, 0, 1)): { now: () => number; advance: (ms: number) => void; set: (ms: number) => void } {
  let t = startMs;
  return { now: () => t, advance: (ms) => void (t += ms), set: (ms) => void (t = ms) };
}

export const silentLogger = pino({ level: 'silent' });

export function epochSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/** JwtOptions with the service defaults, for tests to override. */
export function jwtOptions(overrides: Partial<import('../../src/authn/jwt').JwtOptions> = {}): import('../../src/authn/jwt').JwtOptions {
  return {
    allowedAlgorithms: ['RS256', 'HS256'],
    audiences: [],
    jwksCacheTtlSeconds: 300,
    jwksTimeoutSeconds: 1,
    leewaySeconds: 30,
    ...overrides,
  };
}

/** An authenticator's answer as one word: the deny code, or 'identified' / 'skip'. */
export function codeOf(r: import('../../src/authn/types').AuthnResult): string {
  return r.kind === 'rejected' ? r.error.code : r.kind;
}
