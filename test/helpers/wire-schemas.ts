/**
 * The schemas the wire tests compare against: ours (dist/descriptors.binpb, what `buf build proto`
 * produced), Envoy's canonical ext_authz protos (shipped by @grpc/grpc-js-xds under deps/), the
 * gRPC health proto, and the exact (de)serializers the server uses (proto-loader over proto/).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import * as descriptor from 'protobufjs/ext/descriptor';
import { DESCRIPTOR_SET_PATH, loadPackageDefinition } from '../../src/grpc/descriptors';

export type FromDescriptor = { fromDescriptor(set: unknown): protobuf.Root };

/** FieldDescriptorProto.Type numbers of the scalar types a map key or value can have. */
export const SCALAR: Record<number, string> = {
  1: 'double', 2: 'float', 3: 'int64', 4: 'uint64', 5: 'int32', 6: 'fixed64', 7: 'fixed32', 8: 'bool',
  9: 'string', 12: 'bytes', 13: 'uint32', 15: 'sfixed32', 16: 'sfixed64', 17: 'sint32', 18: 'sint64',
};

/**
 * protobufjs Root from a FileDescriptorSet, with `map<>` fields as real maps. protobufjs'
 * Root.fromDescriptor leaves them as repeated `XxxEntry` messages (same wire format, different
 * object shape), so they are rebuilt here from the entries flagged `map_entry` in the descriptors.
 */
export function rootFromSet(set: descriptor.IFileDescriptorSet): protobuf.Root {
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

export function readOurSet(): descriptor.IFileDescriptorSet {
  const msg = descriptor.FileDescriptorSet.decode(readFileSync(DESCRIPTOR_SET_PATH));
  return descriptor.FileDescriptorSet.toObject(msg) as descriptor.IFileDescriptorSet;
}

/**
 * Every field of every type resolved. Root.resolveAll() alone is not enough: protobufjs skips
 * namespaces it has resolved before, so the map fields rootFromSet swaps in (Struct.fields in the
 * canonical root) stayed unresolved until something decoded with them, which made the descriptor
 * comparison pass only when a decoding test ran first.
 */
function resolveEveryField(ns: protobuf.NamespaceBase): void {
  for (const n of ns.nestedArray) {
    if (n instanceof protobuf.Type) for (const f of n.fieldsArray) f.resolve();
    if (n instanceof protobuf.Namespace || n instanceof protobuf.Type) resolveEveryField(n as protobuf.NamespaceBase);
  }
}

export function ourRootFrom(set: descriptor.IFileDescriptorSet): protobuf.Root {
  const root = rootFromSet(set);
  root.resolveAll();
  resolveEveryField(root);
  return root;
}

/** dist/descriptors.binpb: what `buf build proto` produced from proto/ (plus buf's well-known types). */
export const OUR_SET = readOurSet();
export const OURS = ourRootFrom(OUR_SET);

/**
 * Envoy's canonical protos from @grpc/grpc-js-xds/deps. The google/protobuf well-known types are
 * taken from the descriptor set (buf bundles protobuf's own struct.proto, any.proto, …; proto/ does
 * not define them): protobufjs' bundled copies rename Value's fields to camelCase (stringValue), which
 * is not the upstream schema.
 */
export const CANON = (() => {
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
  resolveEveryField(root);
  return root;
})();
/**
 * Envoy's v2 ext_authz protos, parsed but not linked: @grpc/grpc-js-xds does not ship the
 * envoy/api/v2/core files they import, so v2 is compared by field number/name/cardinality and by the
 * simple name of referenced types (see compareV2).
 */
export const V2_CANON = (() => {
  const dir = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps', 'envoy-api', 'envoy', 'service', 'auth', 'v2');
  const root = new protobuf.Root();
  for (const f of ['external_auth.proto', 'attribute_context.proto']) protobuf.parse(readFileSync(path.join(dir, f), 'utf8'), root, { keepCase: true });
  return root;
})();
export const HEALTH_CANON = (() => {
  const file = path.join(path.dirname(require.resolve('grpc-health-check/package.json')), 'proto', 'health', 'v1', 'health.proto');
  const root = new protobuf.Root();
  root.loadSync(file, { keepCase: true });
  root.resolveAll();
  return root;
})();
/** The (de)serializers the gRPC server itself uses. */
export const PKG = loadPackageDefinition();
export type MethodDef = { requestDeserialize(b: Buffer): unknown; responseSerialize(o: unknown): Buffer; responseDeserialize(b: Buffer): unknown };
export const serverCheck = (svc: string): MethodDef => (PKG[svc] as unknown as { Check: MethodDef }).Check;

/**
 * The server's schema is loaded by proto-loader from proto/ sources, where google.protobuf.Value comes
 * from protobufjs' bundled copy with camelCase field names (stringValue). Same field numbers, so the
 * same wire; only the decoded object's key names differ. Renamed to upstream names for comparison.
 */
export const VALUE_KEYS: Record<string, string> = {
  nullValue: 'null_value', numberValue: 'number_value', stringValue: 'string_value',
  boolValue: 'bool_value', structValue: 'struct_value', listValue: 'list_value',
};
export function upstreamWktNames(v: unknown): unknown {
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
export const serverDecode = (svc: string, wire: Buffer): any => upstreamWktNames(serverCheck(svc).requestDeserialize(wire));

/** protobufjs toObject options equal to what proto-loader hands the server (LOADER_OPTIONS). */
export const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, defaults: false, oneofs: true };

export const canonV3 = (n: string): protobuf.Type => CANON.lookupType(`envoy.service.auth.v3.${n}`);
export const ours = (n: string): protobuf.Type => OURS.lookupType(`envoy.service.auth.v3.${n}`);
