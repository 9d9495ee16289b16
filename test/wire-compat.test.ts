/**
 * Wire compatibility of our trimmed protos (proto/ → dist/descriptors.binpb) with Envoy's canonical
 * ext_authz protos (shipped by @grpc/grpc-js-xds under deps/):
 *  (a) a CheckRequest encoded with the canonical schema decodes identically with ours, and with the
 *      exact deserializer the gRPC server uses (proto-loader over the descriptor set).
 * (b), the CheckResponse direction, is test/wire-response.test.ts; (c), the declarations of proto/
 * against the canonical ones, test/wire-descriptors.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as protobuf from 'protobufjs';
import { AUTHZ_V2, AUTHZ_V3 } from '../src/grpc/descriptors';
import { fromCheckRequest, type RawCheckRequest } from '../src/grpc/request';
import { toCheckInput } from '../src/pipeline/request';
import { canonV3, ours, serverCheck, serverDecode, TO_OBJECT } from './helpers/wire-schemas';


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
    const input = toCheckInput(fromCheckRequest(serverCheck(AUTHZ_V3).requestDeserialize(wire) as RawCheckRequest));
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
