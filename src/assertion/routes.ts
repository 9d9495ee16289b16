import type { IncomingMessage } from 'node:http';
import { sendJson, type Route } from '../admin/http-server';
import type { KeySource } from './key-source';

/**
 * How long upstreams may cache the JWKS: half the default publish-ahead (60 s), so an upstream
 * that honours it has the new key before the new key signs. `assertion-key rotate` warns below it.
 */
export const JWKS_MAX_AGE_S = 30;

function baseUrl(req: IncomingMessage): string {
  const tls = (req.socket as { encrypted?: boolean }).encrypted === true;
  const host = req.headers.host && /^[A-Za-z0-9.:[\]-]{1,255}$/.test(req.headers.host) ? req.headers.host : 'localhost';
  return `${tls ? 'https' : 'http'}://${host}`;
}

/** `/.well-known/jwks.json` and `/.well-known/openid-configuration`: public, unauthenticated. */
export function wellKnownRoutes(deps: { source: KeySource; issuer: string; now: () => number }): Route[] {
  const cache = { 'cache-control': `public, max-age=${JWKS_MAX_AGE_S}` };
  return [
    {
      method: 'GET',
      path: '/.well-known/jwks.json',
      handler: (_req, res) => sendJson(res, 200, { keys: deps.source.keys().published(deps.now()) }, cache),
    },
    {
      method: 'GET',
      path: '/.well-known/openid-configuration',
      handler: (req, res) => {
        const algs = [...new Set(deps.source.keys().published(deps.now()).map((k) => k.alg))];
        sendJson(res, 200, { issuer: deps.issuer, jwks_uri: `${baseUrl(req)}/.well-known/jwks.json`, id_token_signing_alg_values_supported: algs }, cache);
      },
    },
  ];
}
