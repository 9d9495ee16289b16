/**
 * (c) of the wire tests: every message/enum/service we declare in proto/ matches the canonical Envoy
 * and gRPC one field by field (same name → same number, same type, same cardinality, same oneof),
 * including our v2 service (v3 messages) against Envoy's v2 messages, so an incompatible edit of
 * proto/ fails — and the comparison itself is shown to catch such edits.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as protobuf from 'protobufjs';
import type * as descriptor from 'protobufjs/ext/descriptor';
import { AUTHZ_V2 } from '../src/grpc/descriptors';
import { CANON, HEALTH_CANON, OUR_SET, OURS, ourRootFrom, V2_CANON } from './helpers/wire-schemas';

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
