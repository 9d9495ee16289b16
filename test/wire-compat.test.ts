/**
 * Wire compatibility of our trimmed protos (proto/ → dist/descriptors.binpb) with Envoy's canonical
 * ext_authz protos (shipped by @grpc/grpc-js-xds under deps/), in both directions:
 *  (a) a CheckRequest encoded with the canonical schema decodes identically with ours, and with the
 *      exact deserializer the gRPC server uses (proto-loader over the descriptor set);
 *  (b) CheckResponses built by the real allowResponse/denyResponse and serialized the way the server
 *      serializes them decode to the right values with the canonical schema;
 *  (c) every message/enum/service we declare matches the canonical one field by field (same name →
 *      same number, same type, same cardinality, same oneof), including our v2 service (v3 messages)
 *      against Envoy's v2 messages, so an incompatible edit of proto/ fails.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import * as protobuf from 'protobufjs';
import * as descriptor from 'protobufjs/ext/descriptor';
import type { Identity } from '../src/authn/types';
import { AUTHZ_V2, AUTHZ_V3, DESCRIPTOR_SET_PATH, loadPackageDefinition } from '../src/grpc/descriptors';
import { AuthError, DENY_CODES, type DenyCode } from '../src/errors/deny';
import { fromCheckRequest, type RawCheckRequest } from '../src/grpc/request';
import { toCheckResponse, type CheckResponseObject } from '../src/grpc/response';
import type { Credential } from '../src/pipeline/extract';
import { identityHeaders, spoofedHeaders } from '../src/pipeline/identity-headers';
import { toCheckInput as toInput, type CheckInput } from '../src/pipeline/request';

const toCheckInput = (raw: RawCheckRequest | Record<string, unknown>): CheckInput => toInput(fromCheckRequest(raw as RawCheckRequest));

/** The CheckResponse the server sends for an allow decided for `input` (the pipeline's own helpers). */
function allowResponse(input: CheckInput, identity: Identity, cred: Credential | undefined): CheckResponseObject {
  return toCheckResponse({
    allow: true, requestId: 'r-1', input, requirement: undefined, identity,
    headers: identityHeaders(identity), headersToRemove: spoofedHeaders(input.headers, identity),
    queryParamsToRemove: cred?.queryParam ? [cred.queryParam] : [], outcome: { decision: 'allow', identity },
  });
}

function denyResponse(err: AuthError, tokenPresented: boolean): CheckResponseObject {
  return toCheckResponse({ allow: false, requestId: 'r-1', input: undefined, requirement: undefined, error: err, tokenPresented, outcome: { decision: 'deny', code: err.code } });
}

// ---------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------

type FromDescriptor = { fromDescriptor(set: unknown): protobuf.Root };

/** FieldDescriptorProto.Type numbers of the scalar types a map key or value can have. */
const SCALAR: Record<number, string> = {
  1: 'double', 2: 'float', 3: 'int64', 4: 'uint64', 5: 'int32', 6: 'fixed64', 7: 'fixed32', 8: 'bool',
  9: 'string', 12: 'bytes', 13: 'uint32', 15: 'sfixed32', 16: 'sfixed64', 17: 'sint32', 18: 'sint64',
};

/**
 * protobufjs Root from a FileDescriptorSet, with `map<>` fields as real maps. protobufjs'
 * Root.fromDescriptor leaves them as repeated `XxxEntry` messages (same wire format, different
 * object shape), so they are rebuilt here from the entries flagged `map_entry` in the descriptors.
 */
function rootFromSet(set: descriptor.IFileDescriptorSet): protobuf.Root {
  const entries = new Map<string, { key: string; value: string }>();
  const walk = (scope: string, msgs: any[] | undefined): void => {
    for (const m of msgs ?? []) {
      const full = `${scope}.${m.name}`;
      if (m.options?.mapEntry) {
        const [k, v] = [m.field.find((f: any) => f.number === 1), m.field.find((f: any) => f.number === 2)];
        entries.set(full, { key: SCALAR[k.type] as string, value: v.typeName || (SCALAR[v.type] as string) });
      }
      walk(full, m.nestedType);
    }
  };
  for (const f of set.file) walk(f.package ? `.${f.package}` : '', f.messageType as any[]);
  const root = (protobuf.Root as unknown as FromDescriptor).fromDescriptor(descriptor.FileDescriptorSet.fromObject(set as unknown as Record<string, unknown>));
  const fix = (ns: protobuf.NamespaceBase): void => {
    for (const n of [...ns.nestedArray]) {
      if (n instanceof protobuf.Type) {
        for (const f of [...n.fieldsArray]) {
          const e = entries.get(f.type);
          if (!e) continue;
          n.remove(f);
          n.add(new protobuf.MapField(f.name, f.id, e.key, e.value, f.options));
          const entryType = n.nested?.[f.type.slice(f.type.lastIndexOf('.') + 1)];
          if (entryType) n.remove(entryType);
        }
      }
      if (n instanceof protobuf.Namespace || n instanceof protobuf.Type) fix(n as protobuf.NamespaceBase);
    }
  };
  fix(root);
  return root;
}

function readOurSet(): descriptor.IFileDescriptorSet {
  const msg = descriptor.FileDescriptorSet.decode(readFileSync(DESCRIPTOR_SET_PATH));
  return descriptor.FileDescriptorSet.toObject(msg) as descriptor.IFileDescriptorSet;
}

function ourRootFrom(set: descriptor.IFileDescriptorSet): protobuf.Root {
  const root = rootFromSet(set);
  root.resolveAll();
  return root;
}

/** dist/descriptors.binpb: what `buf build proto` produced from proto/ (plus buf's well-known types). */
const OUR_SET = readOurSet();
const OURS = ourRootFrom(OUR_SET);

/**
 * Envoy's canonical protos from @grpc/grpc-js-xds/deps. The google/protobuf well-known types are
 * taken from the descriptor set (buf bundles protobuf's own struct.proto, any.proto, …; proto/ does
 * not define them): protobufjs' bundled copies rename Value's fields to camelCase (stringValue), which
 * is not the upstream schema.
 */
const CANON = (() => {
  const xds = path.dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  const dirs = ['envoy-api', 'googleapis', 'xds', 'protoc-gen-validate'].map((d) => path.join(xds, 'deps', d));
  dirs.push(path.dirname(require.resolve('protobufjs/package.json'))); // google/protobuf/descriptor.proto
  const wkt = OUR_SET.file.filter((f) => f.name?.startsWith('google/protobuf/'));
  assert.ok(wkt.some((f) => f.name === 'google/protobuf/struct.proto'), 'descriptor set lacks google/protobuf/struct.proto');
  const root = rootFromSet({ file: wkt });
  root.files.push(...wkt.map((f) => f.name as string));
  root.resolvePath = (_origin: string, target: string): string => {
    for (const d of dirs) if (existsSync(path.join(d, target))) return path.join(d, target);
    return target;
  };
  root.loadSync(['envoy/service/auth/v3/external_auth.proto'], { keepCase: true });
  root.resolveAll();
  return root;
})();
/**
 * Envoy's v2 ext_authz protos, parsed but not linked: @grpc/grpc-js-xds does not ship the
 * envoy/api/v2/core files they import, so v2 is compared by field number/name/cardinality and by the
 * simple name of referenced types (see compareV2).
 */
const V2_CANON = (() => {
  const dir = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps', 'envoy-api', 'envoy', 'service', 'auth', 'v2');
  const root = new protobuf.Root();
  for (const f of ['external_auth.proto', 'attribute_context.proto']) protobuf.parse(readFileSync(path.join(dir, f), 'utf8'), root, { keepCase: true });
  return root;
})();
const HEALTH_CANON = (() => {
  const file = path.join(path.dirname(require.resolve('grpc-health-check/package.json')), 'proto', 'health', 'v1', 'health.proto');
  const root = new protobuf.Root();
  root.loadSync(file, { keepCase: true });
  root.resolveAll();
  return root;
})();
/** The (de)serializers the gRPC server itself uses. */
const PKG = loadPackageDefinition();
type MethodDef = { requestDeserialize(b: Buffer): unknown; responseSerialize(o: unknown): Buffer };
const serverCheck = (svc: string): MethodDef => (PKG[svc] as unknown as { Check: MethodDef }).Check;

/**
 * The server's schema is loaded by proto-loader from proto/ sources, where google.protobuf.Value comes
 * from protobufjs' bundled copy with camelCase field names (stringValue). Same field numbers, so the
 * same wire; only the decoded object's key names differ. Renamed to upstream names for comparison.
 */
const VALUE_KEYS: Record<string, string> = {
  nullValue: 'null_value', numberValue: 'number_value', stringValue: 'string_value',
  boolValue: 'bool_value', structValue: 'struct_value', listValue: 'list_value',
};
function upstreamWktNames(v: unknown): unknown {
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map(upstreamWktNames);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === 'kind' && typeof x === 'string') out[k] = VALUE_KEYS[x] ?? x;
    else out[VALUE_KEYS[k] ?? k] = upstreamWktNames(x);
  }
  return out;
}
const serverDecode = (svc: string, wire: Buffer): any => upstreamWktNames(serverCheck(svc).requestDeserialize(wire));

/** protobufjs toObject options equal to what proto-loader hands the server (LOADER_OPTIONS). */
const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, defaults: false, oneofs: true };

const canonV3 = (n: string): protobuf.Type => CANON.lookupType(`envoy.service.auth.v3.${n}`);
const ours = (n: string): protobuf.Type => OURS.lookupType(`envoy.service.auth.v3.${n}`);

// ---------------------------------------------------------------------------------------------
// (a) CheckRequest: canonical → ours
// ---------------------------------------------------------------------------------------------

const RAW_VALUE = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "café" in latin1, not valid UTF-8
const RAW_BODY = Buffer.from([0x00, 0x01, 0xfe, 0xff]);
const ANY_PAYLOAD = Buffer.from([0x0a, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f]); // StringValue{value:"hello"}

/** A CheckRequest with every field Envoy fills, in canonical (keepCase) object form. */
function richRequest(): Record<string, any> {
  return {
    attributes: {
      source: {
        address: { socket_address: { protocol: 'TCP', address: '203.0.113.7', port_value: 51234 } },
        service: 'web',
        labels: { app: 'web', version: 'v2' },
        principal: 'spiffe://cluster.local/ns/default/sa/web',
        certificate: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
      },
      destination: {
        address: { socket_address: { protocol: 'UDP', address: '10.0.0.5', named_port: 'http', ipv4_compat: true } },
        principal: 'spiffe://cluster.local/ns/default/sa/api',
      },
      request: {
        time: { seconds: 1767225600, nanos: 123456789 },
        http: {
          id: '8f2d4c1e-request-id',
          method: 'POST',
          headers: { ':authority': 'api.example.com', authorization: 'Bearer abc.def', 'x-orcheo-subject': 'spoofed' },
          header_map: {
            headers: [
              { key: 'x-plain', value: 'plain-value' },
              { key: 'x-raw', raw_value: RAW_VALUE },
            ],
          },
          path: '/api/workflows/42/runs?access_token=tok&x=1',
          host: 'api.example.com',
          scheme: 'https',
          query: 'access_token=tok&x=1',
          fragment: 'frag',
          size: '5000000000', // > 2^32: int64 survives
          protocol: 'HTTP/2',
          body: '{"input":1}',
          raw_body: RAW_BODY,
        },
      },
      context_extensions: { required_scopes: 'workflows:execute', auth: 'required' },
      metadata_context: {
        filter_metadata: {
          'envoy.filters.http.jwt_authn': {
            fields: {
              sub: { string_value: 'user-1' },
              n: { number_value: 3.5 },
              ok: { bool_value: true },
              nothing: { null_value: 'NULL_VALUE' },
              list: { list_value: { values: [{ string_value: 'a' }, { number_value: -1 }] } },
              nested: { struct_value: { fields: { k: { string_value: 'v' } } } },
            },
          },
        },
        typed_filter_metadata: {
          'orcheo.typed': { type_url: 'type.googleapis.com/google.protobuf.StringValue', value: ANY_PAYLOAD },
        },
      },
      route_metadata_context: { filter_metadata: { orcheo: { fields: { route: { string_value: 'runs' } } } } },
      tls_session: { sni: 'api.example.com' },
    },
  };
}

function encodeWith(type: protobuf.Type, obj: Record<string, unknown>): Buffer {
  const msg = type.fromObject(obj);
  assert.equal(type.verify(msg), null);
  return Buffer.from(type.encode(msg).finish());
}

describe('(a) CheckRequest encoded with the canonical Envoy schema', () => {
  const wire = encodeWith(canonV3('CheckRequest'), richRequest());
  const canonObj = canonV3('CheckRequest').toObject(canonV3('CheckRequest').decode(wire), TO_OBJECT);

  test('decodes to the same object with our schema and with the server deserializer', () => {
    const ourObj = ours('CheckRequest').toObject(ours('CheckRequest').decode(wire), TO_OBJECT);
    assert.deepStrictEqual(ourObj, canonObj);
    assert.deepStrictEqual(serverDecode(AUTHZ_V3, wire), canonObj);
    assert.deepStrictEqual(serverDecode(AUTHZ_V2, wire), canonObj);
  });

  test('every field survives, value by value', () => {
    const a = serverDecode(AUTHZ_V3, wire).attributes;
    assert.deepStrictEqual(a.source.address, { socket_address: { protocol: 'TCP', address: '203.0.113.7', port_value: 51234, port_specifier: 'port_value' }, address: 'socket_address' });
    assert.equal(a.source.service, 'web');
    assert.deepStrictEqual(a.source.labels, { app: 'web', version: 'v2' });
    assert.equal(a.source.principal, 'spiffe://cluster.local/ns/default/sa/web');
    assert.match(a.source.certificate, /^-----BEGIN CERTIFICATE-----\nMIIB\n/);
    assert.deepStrictEqual(a.destination.address.socket_address, { protocol: 'UDP', address: '10.0.0.5', named_port: 'http', ipv4_compat: true, port_specifier: 'named_port' });
    assert.equal(a.destination.principal, 'spiffe://cluster.local/ns/default/sa/api');
    assert.deepStrictEqual(a.request.time, { seconds: '1767225600', nanos: 123456789 });
    const h = a.request.http;
    assert.equal(h.id, '8f2d4c1e-request-id');
    assert.equal(h.method, 'POST');
    assert.deepStrictEqual(h.headers, { ':authority': 'api.example.com', authorization: 'Bearer abc.def', 'x-orcheo-subject': 'spoofed' });
    assert.equal(h.header_map.headers.length, 2);
    assert.deepStrictEqual(h.header_map.headers[0], { key: 'x-plain', value: 'plain-value' });
    assert.equal(h.header_map.headers[1].key, 'x-raw');
    assert.ok(RAW_VALUE.equals(h.header_map.headers[1].raw_value));
    assert.equal(h.path, '/api/workflows/42/runs?access_token=tok&x=1');
    assert.equal(h.host, 'api.example.com');
    assert.equal(h.scheme, 'https');
    assert.equal(h.query, 'access_token=tok&x=1');
    assert.equal(h.fragment, 'frag');
    assert.equal(h.size, '5000000000');
    assert.equal(h.protocol, 'HTTP/2');
    assert.equal(h.body, '{"input":1}');
    assert.ok(RAW_BODY.equals(h.raw_body));
    assert.deepStrictEqual(a.context_extensions, { required_scopes: 'workflows:execute', auth: 'required' });
    const jwt = a.metadata_context.filter_metadata['envoy.filters.http.jwt_authn'].fields;
    assert.deepStrictEqual(jwt.sub, { string_value: 'user-1', kind: 'string_value' });
    assert.deepStrictEqual(jwt.n, { number_value: 3.5, kind: 'number_value' });
    assert.deepStrictEqual(jwt.ok, { bool_value: true, kind: 'bool_value' });
    assert.deepStrictEqual(jwt.nothing, { null_value: 'NULL_VALUE', kind: 'null_value' });
    assert.deepStrictEqual(jwt.list.list_value.values, [
      { string_value: 'a', kind: 'string_value' },
      { number_value: -1, kind: 'number_value' },
    ]);
    assert.deepStrictEqual(jwt.nested.struct_value.fields.k, { string_value: 'v', kind: 'string_value' });
    const any = a.metadata_context.typed_filter_metadata['orcheo.typed'];
    assert.equal(any.type_url, 'type.googleapis.com/google.protobuf.StringValue');
    assert.ok(ANY_PAYLOAD.equals(any.value));
    assert.deepStrictEqual(a.route_metadata_context.filter_metadata.orcheo.fields.route, { string_value: 'runs', kind: 'string_value' });
    assert.deepStrictEqual(a.tls_session, { sni: 'api.example.com' });
  });

  test('nothing is dropped: re-encoded with our schema, the canonical schema reads the same message', () => {
    const ourType = ours('CheckRequest');
    const again = Buffer.from(ourType.encode(ourType.decode(wire)).finish());
    assert.equal(again.length, wire.length);
    assert.deepStrictEqual(canonV3('CheckRequest').toObject(canonV3('CheckRequest').decode(again), TO_OBJECT), canonObj);
  });

  test('the pipeline reads the decoded request (headers, header_map raw_value, path, query, source, extensions)', () => {
    const input = toCheckInput(serverCheck(AUTHZ_V3).requestDeserialize(wire) as RawCheckRequest);
    assert.equal(input.method, 'POST');
    assert.equal(input.path, '/api/workflows/42/runs');
    assert.equal(input.query, 'access_token=tok&x=1');
    assert.equal(input.headers.get('authorization'), 'Bearer abc.def');
    assert.equal(input.headers.get('x-plain'), 'plain-value');
    assert.equal(input.headers.get('x-raw'), 'caf\u00e9');
    assert.equal(input.sourceAddress, '203.0.113.7');
    assert.deepStrictEqual(input.contextExtensions, { required_scopes: 'workflows:execute', auth: 'required' });
  });
});

// ---------------------------------------------------------------------------------------------
// (b) CheckResponse: ours → canonical
// ---------------------------------------------------------------------------------------------

const SERVICE_IDENTITY: Identity = {
  authenticated: true,
  type: 'service',
  subject: 'svc-ci',
  tokenId: 'svc-ci',
  scopes: new Set(['workflows:read', 'workflows:execute']),
  workspaces: new Set(['ws-b', 'ws-a']),
  source: 'service_token',
};

/** Our response object → bytes exactly as the server sends them → canonical decode. */
function throughTheWire(obj: CheckResponseObject, enums: typeof String | typeof Number = String): any {
  const wire = serverCheck(AUTHZ_V3).responseSerialize(obj);
  const type = canonV3('CheckResponse');
  return type.toObject(type.decode(wire), { ...TO_OBJECT, enums });
}

function headerList(hs: any[]): Array<[string, string, boolean]> {
  return hs.map((h) => {
    // `append` must be PRESENT (BoolValue{false} → overwrite); absent means Envoy's default action.
    assert.ok(h.append !== undefined, `header ${h.header?.key} is sent without append`);
    return [h.header.key, h.header.value, h.append.value ?? false];
  });
}

describe('(b) CheckResponse from allowResponse/denyResponse decodes with the canonical schema', () => {
  const request = {
    attributes: {
      request: {
        http: {
          method: 'GET',
          path: '/ws?access_token=secret-token',
          headers: { upgrade: 'websocket', 'x-orcheo-evil': '1', 'x-orcheo-subject': 'spoof' },
        },
      },
    },
  };
  const input = toCheckInput(request);
  const allow = allowResponse(input, SERVICE_IDENTITY, { token: 'secret-token', via: 'query', queryParam: 'access_token' });

  test('allow: status, ok_response headers with append=false, headers_to_remove, query_parameters_to_remove, dynamic_metadata', () => {
    const r = throughTheWire(allow);
    assert.deepStrictEqual(Object.keys(r).sort(), ['dynamic_metadata', 'http_response', 'ok_response', 'status']);
    assert.equal(r.http_response, 'ok_response');
    assert.ok(r.status, 'status must be present');
    assert.equal(r.status.code ?? 0, 0);
    assert.equal(r.status.message ?? '', '');
    assert.deepStrictEqual(headerList(r.ok_response.headers), [
      ['x-orcheo-authenticated', 'true', false],
      ['x-orcheo-subject', 'svc-ci', false],
      ['x-orcheo-identity-type', 'service', false],
      ['x-orcheo-token-id', 'svc-ci', false],
      ['x-orcheo-scopes', 'workflows:execute,workflows:read', false],
      ['x-orcheo-workspaces', 'ws-a,ws-b', false],
    ]);
    for (const h of r.ok_response.headers) {
      assert.equal(h.append_action, undefined);
      assert.equal(h.keep_empty_value, undefined);
    }
    assert.deepStrictEqual(r.ok_response.headers_to_remove, ['x-orcheo-evil']);
    assert.deepStrictEqual(r.ok_response.query_parameters_to_remove, ['access_token']);
    // Metadata goes to CheckResponse.dynamic_metadata (field 4), not the deprecated OkHttpResponse one.
    assert.equal(r.ok_response.dynamic_metadata, undefined);
    assert.deepStrictEqual(r.dynamic_metadata.fields, {
      authenticated: { bool_value: true, kind: 'bool_value' },
      subject: { string_value: 'svc-ci', kind: 'string_value' },
      identity_type: { string_value: 'service', kind: 'string_value' },
      token_id: { string_value: 'svc-ci', kind: 'string_value' },
      scopes: { string_value: 'workflows:execute,workflows:read', kind: 'string_value' },
      workspaces: { string_value: 'ws-a,ws-b', kind: 'string_value' },
    });
  });

  test('deny: every code → gRPC status, HttpStatus enum, headers with append=false, JSON body, dynamic_metadata', () => {
    const statusEnum = CANON.lookupEnum('envoy.type.v3.StatusCode');
    for (const code of Object.keys(DENY_CODES) as DenyCode[]) {
      const info = DENY_CODES[code];
      const err = new AuthError(code, undefined, { retryAfterSeconds: 2.2 });
      const presented = code !== 'auth.missing_token';
      const r = throughTheWire(denyResponse(err, presented));
      const n = throughTheWire(denyResponse(err, presented), Number);
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
      if (info.httpStatus === 429 || info.httpStatus === 503) expected.push(['retry-after', '3', false]);
      assert.deepStrictEqual(headerList(r.denied_response.headers), expected, code);
      assert.deepStrictEqual(JSON.parse(r.denied_response.body), { message: info.message, code }, code);
      assert.deepStrictEqual(r.dynamic_metadata.fields, {
        authenticated: { bool_value: false, kind: 'bool_value' },
        code: { string_value: code, kind: 'string_value' },
      }, code);
    }
    // Spot-check the enum names Envoy logs.
    assert.equal(throughTheWire(denyResponse(new AuthError('auth.missing_token'), false)).denied_response.status.code, 'Unauthorized');
    assert.equal(throughTheWire(denyResponse(new AuthError('auth.missing_scope', 'Missing required scopes: a'), true)).denied_response.status.code, 'Forbidden');
    assert.equal(throughTheWire(denyResponse(new AuthError('auth.rate_limited.ip'), false)).denied_response.status.code, 'TooManyRequests');
    assert.equal(throughTheWire(denyResponse(new AuthError('auth.key_unavailable'), true)).denied_response.status.code, 'ServiceUnavailable');
  });
});

// ---------------------------------------------------------------------------------------------
// (c) Descriptor comparison: our declarations vs the canonical ones
// ---------------------------------------------------------------------------------------------

type Reflected = protobuf.Type | protobuf.Enum | protobuf.Service;

function allDeclared(ns: protobuf.NamespaceBase, out: Reflected[] = []): Reflected[] {
  for (const n of ns.nestedArray) {
    if (n instanceof protobuf.Type || n instanceof protobuf.Enum || n instanceof protobuf.Service) out.push(n);
    if (n instanceof protobuf.Namespace || n instanceof protobuf.Type || n instanceof protobuf.Service) allDeclared(n as protobuf.NamespaceBase, out);
  }
  return out;
}

const bare = (fullName: string): string => fullName.replace(/^\./, '');

function lookupCanonical(name: string): protobuf.ReflectionObject | null {
  return CANON.lookup(name) ?? HEALTH_CANON.lookup(name);
}

interface Comparison {
  errors: string[];
  visited: Set<string>;
}

/** Number, cardinality, map key and oneof of a field we declare vs the canonical field of that name. */
function compareShape(f: protobuf.Field, cf: protobuf.Field, fp: string, cmp: Comparison): void {
  if (cf.id !== f.id) cmp.errors.push(`${fp}: number ${f.id}, canonical ${cf.id}`);
  if (cf.repeated !== f.repeated) cmp.errors.push(`${fp}: repeated=${f.repeated}, canonical ${cf.repeated}`);
  if (f.map !== cf.map) cmp.errors.push(`${fp}: map=${f.map}, canonical ${cf.map}`);
  const ourMap = f instanceof protobuf.MapField ? f.keyType : undefined;
  const canMap = cf instanceof protobuf.MapField ? cf.keyType : undefined;
  if (ourMap !== canMap) cmp.errors.push(`${fp}: map key ${ourMap ?? '(not a map)'}, canonical ${canMap ?? '(not a map)'}`);
  if ((f.partOf?.name ?? null) !== (cf.partOf?.name ?? null)) cmp.errors.push(`${fp}: oneof ${f.partOf?.name ?? '-'}, canonical ${cf.partOf?.name ?? '-'}`);
}

/**
 * Compares our message with the canonical message of the same full name, for every field WE declare
 * (canonical fields we leave out are fine: proto3 skips them), recursing into referenced types.
 */
function compareType(ourT: protobuf.Type, canT: protobuf.Type, cmp: Comparison): void {
  const key = `${ourT.fullName}|${canT.fullName}`;
  if (cmp.visited.has(key)) return;
  cmp.visited.add(key);
  const where = bare(ourT.fullName);
  if (ourT.fullName !== canT.fullName) cmp.errors.push(`${where}: canonical type is ${bare(canT.fullName)}`);
  for (const f of ourT.fieldsArray) {
    const fp = `${where}.${f.name}`;
    const cf = canT.fields[f.name];
    if (!cf) {
      cmp.errors.push(`${fp}: no such field in canonical ${bare(canT.fullName)}`);
      continue;
    }
    compareShape(f, cf, fp, cmp);
    const ot = f.resolvedType;
    const ct = cf.resolvedType;
    if (!ot || !ct) {
      if (ot || ct || f.type !== cf.type) cmp.errors.push(`${fp}: type ${ot ? bare(ot.fullName) : f.type}, canonical ${ct ? bare(ct.fullName) : cf.type}`);
    } else if (ot.fullName !== ct.fullName) {
      cmp.errors.push(`${fp}: type ${bare(ot.fullName)}, canonical ${bare(ct.fullName)}`);
    } else if (ot instanceof protobuf.Type && ct instanceof protobuf.Type) {
      compareType(ot, ct, cmp);
    } else if (ot instanceof protobuf.Enum && ct instanceof protobuf.Enum) {
      compareEnum(ot, ct, cmp);
    } else {
      cmp.errors.push(`${fp}: ${bare(ot.fullName)} is a message in one schema and an enum in the other`);
    }
  }
}

/**
 * Our v3 message (served under envoy.service.auth.v2) vs Envoy's v2 message of the same simple name:
 * for every field we declare, either v2 has it with the same number/cardinality/oneof and a type of
 * the same simple name (v2's envoy.api.v2.core types are not shipped; Envoy's v3 core types were
 * generated from them with the same numbers), or its number is unused in v2.
 */
function compareV2(ourT: protobuf.Type, v2T: protobuf.Type, cmp: Comparison): void {
  const key = `${ourT.fullName}|${v2T.fullName}`;
  if (cmp.visited.has(key)) return;
  cmp.visited.add(key);
  const where = `${bare(ourT.fullName)} (as v2)`;
  if (ourT.name !== v2T.name) cmp.errors.push(`${where}: v2 type is ${bare(v2T.fullName)}`);
  for (const f of ourT.fieldsArray) {
    const fp = `${where}.${f.name}`;
    const cf = v2T.fields[f.name];
    if (!cf) {
      const clash = v2T.fieldsArray.find((x) => x.id === f.id);
      if (clash) cmp.errors.push(`${fp} = ${f.id}: that number is ${bare(v2T.fullName)}.${clash.name} in v2`);
      continue;
    }
    compareShape(f, cf, fp, cmp);
    const ot = f.resolvedType;
    const v2Simple = cf.type.slice(cf.type.lastIndexOf('.') + 1);
    if (!ot) {
      if (f.type !== cf.type) cmp.errors.push(`${fp}: type ${f.type}, v2 ${cf.type}`);
      continue;
    }
    if (ot.name !== v2Simple) cmp.errors.push(`${fp}: type ${bare(ot.fullName)}, v2 ${cf.type}`);
    const linked = v2T.lookup(cf.type);
    if (ot instanceof protobuf.Type && linked instanceof protobuf.Type) compareV2(ot, linked, cmp);
  }
}

function compareEnum(ourE: protobuf.Enum, canE: protobuf.Enum, cmp: Comparison): void {
  const key = `${ourE.fullName}|${canE.fullName}`;
  if (cmp.visited.has(key)) return;
  cmp.visited.add(key);
  for (const [name, num] of Object.entries(ourE.values)) {
    if (canE.values[name] !== num) cmp.errors.push(`${bare(ourE.fullName)}.${name} = ${num}: canonical ${canE.values[name] ?? '(absent)'}`);
  }
}

function compareService(ourS: protobuf.Service, canS: protobuf.Service, cmp: Comparison): void {
  for (const m of ourS.methodsArray) {
    const cm = canS.methods[m.name];
    const mp = `${bare(ourS.fullName)}.${m.name}`;
    if (!cm) {
      cmp.errors.push(`${mp}: no such method in canonical`);
      continue;
    }
    if (!!m.requestStream !== !!cm.requestStream || !!m.responseStream !== !!cm.responseStream) cmp.errors.push(`${mp}: streaming differs`);
    m.resolve();
    for (const [o, cName] of [
      [m.resolvedRequestType, cm.requestType],
      [m.resolvedResponseType, cm.responseType],
    ] as const) {
      // Canonical v2 cannot be linked (see V2_CANON), so its types are looked up by name here.
      const c = canS.lookup(cName);
      if (!o || !(c instanceof protobuf.Type)) cmp.errors.push(`${mp}: unresolved type ${cName}`);
      else if (bare(canS.fullName) === AUTHZ_V2) compareV2(o, c, cmp);
      else compareType(o, c, cmp);
    }
  }
}

/** Compares every type and service declared in `root` with the canonical protos. */
function compareWithCanonical(root: protobuf.Root): Comparison {
  const cmp: Comparison = { errors: [], visited: new Set() };
  for (const d of allDeclared(root)) {
    const name = bare(d.fullName);
    if (d instanceof protobuf.Service && name === AUTHZ_V2) {
      // Our v2 service reuses the v3 messages: compare them structurally with Envoy's v2 messages.
      compareService(d, V2_CANON.lookupService(AUTHZ_V2), cmp);
      continue;
    }
    const c = lookupCanonical(name);
    if (!c) {
      cmp.errors.push(`${name}: not found in the canonical protos`);
    } else if (d instanceof protobuf.Type && c instanceof protobuf.Type) {
      compareType(d, c, cmp);
    } else if (d instanceof protobuf.Enum && c instanceof protobuf.Enum) {
      compareEnum(d, c, cmp);
    } else if (d instanceof protobuf.Service && c instanceof protobuf.Service) {
      compareService(d, c, cmp);
    } else {
      cmp.errors.push(`${name}: kind differs from canonical`);
    }
  }
  return cmp;
}

/** A copy of our descriptor set with one field of one message altered. */
function mutatedSet(msgName: string, fieldName: string, change: (f: Record<string, unknown>) => void): descriptor.IFileDescriptorSet {
  const set = structuredClone(OUR_SET) as any;
  const pkg = msgName.slice(0, msgName.lastIndexOf('.'));
  const simple = msgName.slice(msgName.lastIndexOf('.') + 1);
  for (const file of set.file) {
    if (file.package !== pkg) continue;
    const msg = (file.messageType ?? []).find((m: any) => m.name === simple);
    const field = msg?.field?.find((f: any) => f.name === fieldName);
    if (field) {
      change(field);
      return set;
    }
  }
  throw new Error(`${msgName}.${fieldName} not found in our descriptor set`);
}

describe('(c) every declaration in proto/ matches the canonical Envoy/gRPC protos', () => {
  test('same name → same number, type, cardinality and oneof, for every field, enum value and method we declare', () => {
    const cmp = compareWithCanonical(OURS);
    assert.deepStrictEqual(cmp.errors, []);
    // Non-vacuous: the walk reached the messages that carry the ext_authz contract.
    const reached = new Set([...cmp.visited].map((k) => bare(k.split('|')[0] as string)));
    for (const t of [
      'envoy.service.auth.v3.CheckRequest',
      'envoy.service.auth.v3.AttributeContext.HttpRequest',
      'envoy.service.auth.v3.AttributeContext.Peer',
      'envoy.service.auth.v3.AttributeContext.TLSSession',
      'envoy.service.auth.v3.CheckResponse',
      'envoy.service.auth.v3.OkHttpResponse',
      'envoy.service.auth.v3.DeniedHttpResponse',
      'envoy.config.core.v3.HeaderValueOption',
      'envoy.config.core.v3.HeaderMap',
      'envoy.config.core.v3.SocketAddress',
      'envoy.config.core.v3.Metadata',
      'envoy.type.v3.HttpStatus',
      'envoy.type.v3.StatusCode',
      'google.rpc.Status',
      'google.protobuf.Struct',
      'google.protobuf.BoolValue',
      'grpc.health.v1.HealthCheckResponse',
    ]) {
      assert.ok(reached.has(t), `comparison never reached ${t}`);
    }
    // The v2 service was compared structurally against Envoy's v2 messages.
    assert.ok([...cmp.visited].some((k) => k.endsWith('|.envoy.service.auth.v2.CheckRequest')));
    for (const v2 of ['CheckResponse', 'OkHttpResponse', 'DeniedHttpResponse', 'AttributeContext.HttpRequest', 'AttributeContext.Peer']) {
      assert.ok(cmp.visited.has(`.envoy.service.auth.v3.${v2}|.envoy.service.auth.v2.${v2}`), `v2 ${v2} not compared`);
    }
  });

  test('the comparison catches incompatible edits (renumbered field, changed type, wrong enum value)', () => {
    const renumbered = compareWithCanonical(ourRootFrom(mutatedSet('envoy.service.auth.v3.CheckResponse', 'dynamic_metadata', (f) => (f.number = 5))));
    assert.ok(renumbered.errors.includes('envoy.service.auth.v3.CheckResponse.dynamic_metadata: number 5, canonical 4'), renumbered.errors.join('\n'));

    const retyped = compareWithCanonical(
      ourRootFrom(
        mutatedSet('envoy.config.core.v3.HeaderValueOption', 'append', (f) => {
          f.type = 8; // TYPE_BOOL instead of google.protobuf.BoolValue
          delete f.typeName;
        }),
      ),
    );
    assert.ok(retyped.errors.some((e) => e.startsWith('envoy.config.core.v3.HeaderValueOption.append: type bool, canonical google.protobuf.BoolValue')), retyped.errors.join('\n'));

    const moved = compareWithCanonical(ourRootFrom(mutatedSet('envoy.service.auth.v3.AttributeContext', 'tls_session', (f) => (f.number = 14))));
    assert.ok(moved.errors.includes('envoy.service.auth.v3.AttributeContext.tls_session: number 14, canonical 12'), moved.errors.join('\n'));

    const set = structuredClone(OUR_SET) as any;
    const httpStatusFile = set.file.find((f: any) => f.package === 'envoy.type.v3');
    httpStatusFile.enumType[0].value.find((v: any) => v.name === 'Unauthorized').number = 499;
    const badEnum = compareWithCanonical(ourRootFrom(set));
    assert.ok(badEnum.errors.includes('envoy.type.v3.StatusCode.Unauthorized = 499: canonical 401'), badEnum.errors.join('\n'));
  });
});
