/**
 * Random CheckRequests for the fuzz test (test/fuzz-check.test.ts): headers in both of Envoy's
 * forms, authorization values, tokens real and near-real, JWT-shaped strings, WebSocket credentials,
 * paths, methods, context_extensions and missing fields. Each comes with what the service can see
 * of it (`sent`), for the independent oracle in check-oracle.ts.
 */
import fc from 'fast-check';
import type { Sent } from './check-oracle';
import { checkRequest } from './grpc-client';

export const b64url = (s: string): string => Buffer.from(s).toString('base64url');

/** The valid credentials and some invalid JWTs, made by the test before it runs. */
export interface Secrets {
  boot: string;
  svc: string;
  jwt: string;
  expiredJwt: string;
  noneJwt: string;
  wrongKeyJwt: string;
}

const tokenChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~+/='.split(''));
const headerName = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,24}$/);
const headerValue = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 }), fc.constant(''));

function tokens(s: Secrets): fc.Arbitrary<string> {
  const valid = fc.constantFrom(s.boot, s.svc, s.jwt);
  return fc.oneof(
    { weight: 12, arbitrary: valid },
    // Near misses: one character changed, appended, removed; a prefix or suffix.
    { weight: 2, arbitrary: fc.tuple(valid, fc.nat(), tokenChar).map(([v, i, c]) => v.slice(0, i % v.length) + c + v.slice((i % v.length) + 1)) },
    { weight: 1, arbitrary: fc.tuple(valid, tokenChar).map(([v, c]) => v + c) },
    { weight: 1, arbitrary: valid.map((v) => v.slice(0, -1)) },
    { weight: 1, arbitrary: fc.constantFrom(s.expiredJwt, s.noneJwt, s.wrongKeyJwt) },
    // JWT-shaped: random header/payload JSON, random signature.
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.jsonValue({ maxDepth: 2 }), fc.jsonValue({ maxDepth: 2 }), fc.string({ maxLength: 20 }))
        .map(([h, p, sig]) => `${b64url(JSON.stringify(h))}.${b64url(JSON.stringify(p))}.${b64url(sig)}`),
    },
    {
      weight: 1,
      arbitrary: fc
        .record({ alg: fc.constantFrom('HS256', 'RS256', 'none', 'ES256', 'HS512', 'PS256', 'None', ''), kid: fc.option(fc.string({ maxLength: 10 })) })
        .map((h) => `${b64url(JSON.stringify(h))}.${b64url(JSON.stringify({ sub: 'fuzz-user', scope: 'workflows:read workflows:write', workspace_ids: ['ws-a'] }))}.`),
    },
    { weight: 2, arbitrary: fc.string({ maxLength: 60 }) },
    { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{43}$/) }, // service-token shaped
    { weight: 1, arbitrary: fc.constantFrom('x'.repeat(16 * 1024 + 1), 'a.b.c', '..', '.', ' ', '\u0000', 'Bearer') },
  );
}

function authorization(s: Secrets): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.tuple(fc.constantFrom('Bearer', 'bearer', 'BEARER', 'BeArEr'), fc.constantFrom(' ', '  ', '\t'), tokens(s)).map(([sch, sp, t]) => `${sch}${sp}${t}`) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('Basic', 'Token', 'Bearer:', 'Bearerx', 'JWT', ''), tokens(s)).map(([sch, t]) => `${sch} ${t}`) },
    { weight: 1, arbitrary: fc.constantFrom('Bearer', 'Bearer ', ' ', '', 'bearer\u0000x') },
    { weight: 1, arbitrary: fc.string({ maxLength: 50 }) },
  );
}

const PATHS = [
  '/', '/api/workflows', '/api/workflows/wf-1', '/api/workflows/wf-1/runs', '/api/credentials', '/api/credentials/c-1',
  '/api/admin/service-tokens', '/api/admin/service-tokens/x/rotate', '/api/workspaces/ws-a/items', '/api/workspaces/ws-b/items',
  '/api/workspaces/*/x', '/healthz', '/api/profile',
];
const path = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...PATHS) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom(...PATHS), fc.constantFrom('', '/', '//', '/..', '/../admin', '/./x', '%2F..', '?a=b', '?access_token=', '#frag', '/%2e%2e/', ';x'), fc.constantFrom('', '/api/..', '//', '/./'))
      .map(([p, suffix, prefix]) => `${prefix}${p}${suffix}`),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.webPath() },
);
const method = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'CONNECT') },
  { weight: 1, arbitrary: fc.constantFrom('get', 'post', 'options', '') },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
);
const spoofHeaders = fc.dictionary(
  fc.tuple(fc.constantFrom('x-orcheo-', 'X-Orcheo-', 'X-ORCHEO-'), fc.constantFrom('subject', 'authenticated', 'scopes', 'workspaces', 'token-id', 'identity-type', 'extra', 'Subject', 'a')).map(([p, n]) => p + n),
  fc.constantFrom('admin', 'true', '*', 'admin:tokens:write', ''),
  { maxKeys: 4 },
);
const contextExtensions = fc.option(
  fc.dictionary(
    fc.oneof(fc.constantFrom('auth', 'required_scopes', 'required_workspace'), fc.string({ maxLength: 10 })),
    fc.oneof(fc.constantFrom('public', 'optional', 'required', 'PUBLIC', ' optional ', 'nonsense', '', 'workflows:read', 'workflows:read,vault:write', 'ws-a', 'ws-b', '*'), fc.string({ maxLength: 12 })),
    { maxKeys: 3 },
  ),
);
const sourceIp = fc.option(fc.oneof(fc.ipV4(), fc.ipV6(), fc.constantFrom('not-an-ip', '', '::ffff:10.0.0.1', '[::1]:80', '1.2.3.4:5')), { nil: undefined });

export interface Generated {
  readonly req: Record<string, unknown>;
  /** What the service can see (headers whichever form carried them), for the independent oracle. */
  readonly sent: Sent;
}

export function requests(s: Secrets): fc.Arbitrary<Generated> {
  return fc
    .record({
      method,
      path,
      authz: fc.option(authorization(s), { freq: 4 }),
      ws: fc.option(fc.record({ upgrade: fc.constantFrom('websocket', 'WebSocket', 'h2c, websocket', 'nope'), proto: fc.option(tokens(s).map((t) => `chat, bearer.${t}`)), query: fc.option(fc.tuple(fc.constantFrom('access_token', 'token', 'tok'), tokens(s))) }), { freq: 4 }),
      preflight: fc.boolean(),
      spoof: spoofHeaders,
      extra: fc.dictionary(headerName, headerValue, { maxKeys: 4 }),
      xff: fc.option(fc.array(fc.oneof(fc.ipV4(), fc.constant('garbage')), { maxLength: 4 }).map((a) => a.join(', '))),
      ext: contextExtensions,
      sourceIp,
      form: fc.constantFrom('headers', 'header_map', 'header_map_raw', 'both'),
      drop: fc.constantFrom('none', 'none', 'none', 'none', 'attributes', 'request', 'http', 'source', 'method', 'path'),
    })
    .map((g) => {
      const headers: Array<[string, string]> = [];
      if (g.authz !== null) headers.push([g.form === 'both' ? 'Authorization' : 'authorization', g.authz]);
      let p = g.path;
      if (g.ws) {
        headers.push(['upgrade', g.ws.upgrade]);
        if (g.ws.proto !== null) headers.push(['sec-websocket-protocol', g.ws.proto]);
        if (g.ws.query !== null) p += `${p.includes('?') ? '&' : '?'}${g.ws.query[0]}=${encodeURIComponent(g.ws.query[1])}`;
      }
      if (g.preflight) headers.push(['origin', 'https://app.example'], ['access-control-request-method', 'POST']);
      for (const [k, v] of Object.entries(g.spoof)) headers.push([k, v]);
      for (const [k, v] of Object.entries(g.extra)) headers.push([k, v]);
      if (g.xff !== null) headers.push(['x-forwarded-for', g.xff]);
      const req = checkRequest({ method: g.method, path: p, sourceIp: g.sourceIp, contextExtensions: g.ext ?? undefined });
      const attrs = req.attributes as Record<string, any>;
      const http = attrs.request.http as Record<string, unknown>;
      // Headers as Envoy sends them: the map, header_map (encode_raw_headers, value or raw bytes), or both.
      const map: Record<string, string> = {};
      const list: Array<Record<string, unknown>> = [];
      headers.forEach(([k, v], i) => {
        const toMap = g.form === 'headers' || (g.form === 'both' && i % 2 === 0);
        if (toMap) map[k] = v;
        else list.push(g.form === 'header_map_raw' ? { key: k, raw_value: Buffer.from(v, 'latin1') } : { key: k, value: v });
      });
      http.headers = map;
      if (list.length > 0) http.header_map = { headers: list };
      if (g.ext === null) delete attrs.context_extensions;
      if (g.sourceIp === undefined) delete attrs.source;
      if (g.drop === 'attributes') delete req.attributes;
      else if (g.drop === 'request') delete attrs.request;
      else if (g.drop === 'http') delete attrs.request.http;
      else if (g.drop === 'source') delete attrs.source;
      else if (g.drop === 'method') delete http.method;
      else if (g.drop === 'path') delete http.path;
      // What the service can actually see, after the drops.
      const noHttp = g.drop === 'attributes' || g.drop === 'request' || g.drop === 'http';
      const sent: Sent = {
        method: noHttp || g.drop === 'method' ? undefined : g.method,
        path: noHttp || g.drop === 'path' ? undefined : p,
        headers: noHttp ? [] : headers.map(([k, v]) => [k, g.form === 'header_map_raw' && !(k in map) ? Buffer.from(v, 'latin1').toString('latin1') : v] as const),
        contextExtensions: g.drop === 'attributes' || g.ext === null ? undefined : g.ext,
      };
      return { req, sent };
    });
}
