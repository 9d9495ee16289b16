/**
 * (b) of the wire tests: the CheckResponse bytes the server sends (src/grpc/encode.ts: cached parts
 * plus the per-request decision id and deny body) decode, with the server's own deserializer and with
 * Envoy's canonical schema, to exactly the object form `toCheckResponse` describes, and to the right
 * values — for allows (plain, headers_to_remove, query parameters, shadow_code) and every deny code.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ANONYMOUS, type Identity } from '../src/authn/types';
import { AUTHZ_V2, AUTHZ_V3 } from '../src/grpc/descriptors';
import { AuthError, DENY_CODES, type DenyCode } from '../src/errors/deny';
import { fromCheckRequest, type RawCheckRequest } from '../src/grpc/request';
import { encodeCheckResponse, toCheckResponse } from '../src/grpc/response';
import type { AllowDecision, Decision, DenyDecision } from '../src/pipeline/decision';
import { identityHeaders, spoofedHeaders } from '../src/pipeline/identity-headers';
import { toCheckInput } from '../src/pipeline/request';
import { canonV3, CANON, serverCheck, TO_OBJECT } from './helpers/wire-schemas';

const SERVICE_IDENTITY: Identity = {
  authenticated: true,
  type: 'service',
  subject: 'svc-ci',
  tokenId: 'svc-ci',
  scopes: new Set(['workflows:read', 'workflows:execute']),
  workspaces: new Set(['ws-b', 'ws-a']),
  source: 'service_token',
};

const input = (headers: Record<string, string> = {}, path = '/api/x') =>
  toCheckInput(fromCheckRequest({ attributes: { request: { http: { method: 'GET', path, headers } } } } as RawCheckRequest));

function allow(requestId: string, identity: Identity, over: Partial<AllowDecision> = {}): AllowDecision {
  const i = input();
  return { allow: true, requestId, input: i, requirement: undefined, identity, headers: identityHeaders(identity), headersToRemove: [], queryParamsToRemove: [], outcome: { decision: 'allow', identity }, ...over };
}

function deny(requestId: string, err: AuthError, tokenPresented: boolean): DenyDecision {
  return { allow: false, requestId, input: undefined, requirement: undefined, error: err, tokenPresented, outcome: { decision: 'deny', code: err.code } };
}

/** The bytes the server sends for `d`, decoded with the canonical Envoy schema. */
function canonical(bytes: Buffer, enums: typeof String | typeof Number = String): any {
  const type = canonV3('CheckResponse');
  return type.toObject(type.decode(bytes), { ...TO_OBJECT, enums });
}

/**
 * Holds the encoder to the object form: our bytes equal protobufjs' own encoding of `toCheckResponse(d)`,
 * and both decoders read the same message from them, for the v3 and the v2 service.
 */
function sameAsObjectForm(d: Decision): Buffer {
  const bytes = encodeCheckResponse(d);
  for (const svc of [AUTHZ_V3, AUTHZ_V2]) {
    const m = serverCheck(svc);
    const reference = m.responseSerialize(toCheckResponse(d));
    // Same field order as protobufjs (by field number, map entries in insertion order): same bytes.
    assert.deepStrictEqual(bytes, reference, `${svc}: bytes, ${d.requestId}`);
    assert.deepStrictEqual(m.responseDeserialize(bytes), m.responseDeserialize(reference), `${svc}: server deserializer, ${d.requestId}`);
    assert.deepStrictEqual(canonical(bytes), canonical(reference), `${svc}: canonical schema, ${d.requestId}`);
  }
  return bytes;
}

function headerList(hs: any[]): Array<[string, string, boolean]> {
  return hs.map((h) => {
    // `append` must be PRESENT (BoolValue{false} → overwrite); absent means Envoy's default action.
    assert.ok(h.append !== undefined, `header ${h.header?.key} is sent without append`);
    assert.equal(h.append_action, undefined);
    assert.equal(h.keep_empty_value, undefined);
    return [h.header.key, h.header.value, h.append.value ?? false];
  });
}

const str = (v: string) => ({ string_value: v, kind: 'string_value' });
const bool = (v: boolean) => ({ bool_value: v, kind: 'bool_value' });

const IDENTITY_FIELDS = {
  authenticated: bool(true),
  subject: str('svc-ci'),
  identity_type: str('service'),
  token_id: str('svc-ci'),
  scopes: str('workflows:execute,workflows:read'),
  workspaces: str('ws-a,ws-b'),
};
const IDENTITY_HEADERS: Array<[string, string, boolean]> = [
  ['x-orcheo-authenticated', 'true', false],
  ['x-orcheo-subject', 'svc-ci', false],
  ['x-orcheo-identity-type', 'service', false],
  ['x-orcheo-token-id', 'svc-ci', false],
  ['x-orcheo-scopes', 'workflows:execute,workflows:read', false],
  ['x-orcheo-workspaces', 'ws-a,ws-b', false],
];

describe('(b) CheckResponse bytes decode with the canonical schema to the object form', () => {
  test('plain allow: status OK, identity headers with append=false, decision_id in dynamic_metadata', () => {
    const r = canonical(sameAsObjectForm(allow('req-plain-1', SERVICE_IDENTITY)));
    assert.deepStrictEqual(Object.keys(r).sort(), ['dynamic_metadata', 'http_response', 'ok_response', 'status']);
    assert.equal(r.http_response, 'ok_response');
    assert.equal(r.status.code ?? 0, 0);
    assert.equal(r.status.message ?? '', '');
    assert.deepStrictEqual(headerList(r.ok_response.headers), IDENTITY_HEADERS);
    assert.equal(r.ok_response.headers_to_remove, undefined);
    assert.equal(r.ok_response.query_parameters_to_remove, undefined);
    // Metadata goes to CheckResponse.dynamic_metadata (field 4), not the deprecated OkHttpResponse one.
    assert.equal(r.ok_response.dynamic_metadata, undefined);
    assert.deepStrictEqual(r.dynamic_metadata.fields, { ...IDENTITY_FIELDS, decision_id: str('req-plain-1') });
  });

  test('allows sharing the cached identity part still carry their own decision id', () => {
    const ids = ['a-1', 'b-22', 'c-'.padEnd(128, 'x')];
    for (const id of ids) assert.deepStrictEqual(canonical(sameAsObjectForm(allow(id, SERVICE_IDENTITY))).dynamic_metadata.fields.decision_id, str(id));
    assert.deepStrictEqual(canonical(sameAsObjectForm(allow('anon-1', ANONYMOUS))).dynamic_metadata.fields.decision_id, str('anon-1'));
  });

  test('allow with spoofed headers to remove and the credential query parameter', () => {
    const spoofing = input({ upgrade: 'websocket', 'x-orcheo-evil': '1', 'x-orcheo-subject': 'spoof' }, '/ws?access_token=secret-token');
    const d = allow('req-ws', SERVICE_IDENTITY, { input: spoofing, headersToRemove: spoofedHeaders(spoofing.headers, SERVICE_IDENTITY), queryParamsToRemove: ['access_token'] });
    const r = canonical(sameAsObjectForm(d));
    assert.deepStrictEqual(headerList(r.ok_response.headers), IDENTITY_HEADERS);
    assert.deepStrictEqual(r.ok_response.headers_to_remove, ['x-orcheo-evil']);
    assert.deepStrictEqual(r.ok_response.query_parameters_to_remove, ['access_token']);
    assert.deepStrictEqual(r.dynamic_metadata.fields, { ...IDENTITY_FIELDS, decision_id: str('req-ws') });
  });

  test('shadow allow carries shadow_code next to the identity and the decision id', () => {
    const d = allow('req-shadow', SERVICE_IDENTITY, { shadow: new AuthError('auth.missing_scope', 'Missing required scopes: vault:read') });
    const r = canonical(sameAsObjectForm(d));
    assert.equal(r.http_response, 'ok_response');
    assert.deepStrictEqual(r.dynamic_metadata.fields, { ...IDENTITY_FIELDS, shadow_code: str('auth.missing_scope'), decision_id: str('req-shadow') });
    // The shadow response is never served from (or into) the plain identity's cache.
    assert.equal(canonical(sameAsObjectForm(allow('req-after', SERVICE_IDENTITY))).dynamic_metadata.fields.shadow_code, undefined);
  });

  test('deny: every code → gRPC status, HttpStatus enum, headers, JSON body with request_id, dynamic_metadata', () => {
    const statusEnum = CANON.lookupEnum('envoy.type.v3.StatusCode');
    for (const code of Object.keys(DENY_CODES) as DenyCode[]) {
      const info = DENY_CODES[code];
      for (const retry of [undefined, 2.2]) {
        const presented = code !== 'auth.missing_token';
        const id = `req-${code}-${retry ?? 0}`;
        const bytes = sameAsObjectForm(deny(id, new AuthError(code, undefined, retry === undefined ? undefined : { retryAfterSeconds: retry }), presented));
        const r = canonical(bytes);
        const n = canonical(bytes, Number);
        assert.equal(r.http_response, 'denied_response', code);
        assert.equal(r.ok_response, undefined, code);
        assert.deepStrictEqual(r.status, { code: info.grpcStatus, message: code }, code);
        assert.equal(n.denied_response.status.code, info.httpStatus, code);
        assert.equal(statusEnum.values[r.denied_response.status.code], info.httpStatus, code);
        const expected: Array<[string, string, boolean]> = [
          ['content-type', 'application/json', false],
          ['cache-control', 'no-store', false],
        ];
        if (info.httpStatus === 401) expected.push(['www-authenticate', presented ? 'Bearer error="invalid_token"' : 'Bearer', false]);
        if (code === 'auth.missing_scope') expected.push(['www-authenticate', 'Bearer error="insufficient_scope"', false]);
        if ((info.httpStatus === 429 || info.httpStatus === 503) && retry !== undefined) expected.push(['retry-after', '3', false]);
        assert.deepStrictEqual(headerList(r.denied_response.headers), expected, code);
        assert.deepStrictEqual(JSON.parse(r.denied_response.body), { message: info.message, code, request_id: id }, code);
        assert.deepStrictEqual(r.dynamic_metadata.fields, { authenticated: bool(false), code: str(code), decision_id: str(id) }, code);
      }
    }
    // Spot-check the enum names Envoy logs.
    const name = (err: AuthError) => canonical(encodeCheckResponse(deny('x', err, true))).denied_response.status.code;
    assert.equal(name(new AuthError('auth.missing_token')), 'Unauthorized');
    assert.equal(name(new AuthError('auth.missing_scope', 'Missing required scopes: a')), 'Forbidden');
    assert.equal(name(new AuthError('auth.rate_limited.ip')), 'TooManyRequests');
    assert.equal(name(new AuthError('auth.key_unavailable')), 'ServiceUnavailable');
  });

  test('a cached deny answers each request with its own id, also ids JSON must escape', () => {
    for (const id of ['first', 'second', 'quote"back\\slash', 'caf\u00e9-\u2603']) {
      const r = canonical(sameAsObjectForm(deny(id, new AuthError('auth.invalid_token'), true)));
      assert.equal(JSON.parse(r.denied_response.body).request_id, id);
      assert.deepStrictEqual(r.dynamic_metadata.fields.decision_id, str(id));
    }
  });
});

describe('deny body', () => {
  test('is byte for byte JSON.stringify({message, code, request_id}), for awkward ids and messages', async () => {
    const { denyBody } = await import('../src/pipeline/deny-http');
    const errs = [new AuthError('auth.missing_token'), new AuthError('auth.missing_scope', 'Missing required scopes: "a", b\u2028c'), new AuthError('auth.rate_limited.ip', 'Too many authentication attempts from IP ::1')];
    for (const err of errs) {
      for (const id of [undefined, 'r-1', 'quote " back \\ slash', '\u00e9\ud83d\ude00', 'x'.repeat(128)]) {
        const expected = JSON.stringify(id === undefined ? { message: err.message, code: err.code } : { message: err.message, code: err.code, request_id: id });
        // Twice: the second call reads the cached prefix.
        assert.equal(denyBody(err, id), expected);
        assert.equal(denyBody(err, id), expected);
      }
    }
  });
});
