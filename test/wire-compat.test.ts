/**
 * Wire compatibility of our trimmed protos (proto/ → dist/descriptors.binpb) with Envoy's canonical
 * ext_authz protos (shipped by @grpc/grpc-js-xds under deps/):
 *  (a) a CheckRequest encoded with the canonical schema decodes identically with ours, and with the
 *      exact deserializer the gRPC server uses (proto-loader over the descriptor set);
 *  (c) every message/enum/service we declare matches the canonical one field by field (same name →
 *      same number, same type, same cardinality, same oneof), including our v2 service (v3 messages)
 *      against Envoy's v2 messages, so an incompatible edit of proto/ fails.
 * (b), the CheckResponse direction, is test/wire-response.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as protobuf from 'protobufjs';
import type * as descriptor from 'protobufjs/ext/descriptor';
import { AUTHZ_V2, AUTHZ_V3 } from '../src/grpc/descriptors';
import { fromCheckRequest, type RawCheckRequest } from '../src/grpc/request';
import { toCheckInput } from '../src/pipeline/request';
import { CANON, canonV3, HEALTH_CANON, OUR_SET, OURS, ourRootFrom, ours, serverCheck, serverDecode, TO_OBJECT, V2_CANON } from './helpers/wire-schemas';


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
