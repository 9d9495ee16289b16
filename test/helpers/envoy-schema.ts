/**
 * Offline validation helpers for the deployment files under deploy/ and docker-compose.yml.
 *
 * 1. A STRICT walker that checks an Envoy config (parsed YAML) against Envoy's canonical protos,
 *    shipped by @grpc/grpc-js-xds under deps/{envoy-api,googleapis,xds,protoc-gen-validate}.
 *    protobufjs' fromObject() silently drops unknown fields, so it cannot be used for this; the
 *    walker below follows the proto3 JSON mapping the way Envoy's YAML loader does
 *    (unknown field = error, snake_case or lowerCamel names, enums by name or number, well-known
 *    types in their JSON form, Any resolved through its @type URL) and additionally enforces the
 *    protoc-gen-validate rules and deprecation markers found on the fields.
 * 2. Small helpers shared by the test/deploy-*.test.ts files (repository paths, YAML loading,
 *    Kubernetes object helpers). They live here because this is the only helper file of the deploy
 *    tests.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { parseAllDocuments, visit, type Document } from 'yaml';

// ---------------------------------------------------------------------------------------------
// Repository layout
// ---------------------------------------------------------------------------------------------

/** The repository root (the directory holding package.json), from src or from dist/. */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'deploy'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find the repository root above ${__dirname}`);
    dir = parent;
  }
}

export function repoPath(...parts: string[]): string {
  return path.join(repoRoot(), ...parts);
}

export function readRepoFile(rel: string): string {
  return fs.readFileSync(repoPath(rel), 'utf8');
}

/** Files under `dir` (relative to the repo root), recursively, whose name ends with one of `exts`. */
export function listRepoFiles(dir: string, exts: string[]): string[] {
  const out: string[] = [];
  const walk = (abs: string, rel: string): void => {
    for (const entry of fs.readdirSync(abs, { withFileTypes: true })) {
      const a = path.join(abs, entry.name);
      const r = path.posix.join(rel, entry.name);
      if (entry.isDirectory()) walk(a, r);
      else if (exts.some((e) => entry.name.endsWith(e))) out.push(r);
    }
  };
  walk(repoPath(dir), dir);
  return out.sort();
}

/** Every YAML file the deploy tests cover: deploy/**\/*.y(a)ml and docker-compose.yml. */
export function deployYamlFiles(): string[] {
  return ['docker-compose.yml', ...listRepoFiles('deploy', ['.yaml', '.yml'])];
}

// ---------------------------------------------------------------------------------------------
// YAML
// ---------------------------------------------------------------------------------------------

export interface ParsedYaml {
  file: string;
  docs: unknown[];
  problems: string[];
}

/**
 * Plain scalars that YAML 1.2 (yaml@2, Envoy) reads as strings or decimal numbers but YAML 1.1
 * parsers (Kubernetes' sigs.k8s.io/yaml, PyYAML) read as booleans, octal or base-60 numbers.
 */
const YAML11_AMBIGUOUS = [
  /^(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$/,
  /^[-+]?0[0-7]+$/, // octal in 1.1, decimal in 1.2
  // base-60 numbers in YAML 1.1 ("22:22" is 1342); any unquoted "host:container" port pair is flagged
  /^[-+]?[0-9][0-9_]*(:[0-9]+)+(\.[0-9_]*)?$/,
];

/** Parse YAML text (all documents) and report every error, warning and YAML-1.1 ambiguity. */
export function parseYamlText(text: string, file = '<text>'): ParsedYaml {
  const problems: string[] = [];
  const parsed: Document.Parsed[] = parseAllDocuments(text, { strict: true, uniqueKeys: true, prettyErrors: true }) as Document.Parsed[];
  const docs: unknown[] = [];
  for (const doc of parsed) {
    for (const e of doc.errors) problems.push(`${file}: error: ${e.message}`);
    for (const w of doc.warnings) problems.push(`${file}: warning: ${w.message}`);
    visit(doc, {
      Scalar(_key, node) {
        if (node.type === 'PLAIN' && typeof node.source === 'string' && YAML11_AMBIGUOUS.some((re) => re.test(node.source as string))) {
          problems.push(`${file}: plain scalar "${node.source}" means something else to YAML 1.1 parsers; quote it`);
        }
      },
    });
    if (doc.contents !== null) docs.push(doc.toJS({ maxAliasCount: 100 }));
  }
  return { file, docs, problems };
}

export function parseYamlFile(rel: string): ParsedYaml {
  return parseYamlText(readRepoFile(rel), rel);
}

/** The single document of a YAML file; throws on parse problems. */
export function loadYaml(rel: string): any {
  const p = parseYamlFile(rel);
  if (p.problems.length) throw new Error(p.problems.join('\n'));
  if (p.docs.length !== 1) throw new Error(`${rel}: expected one YAML document, got ${p.docs.length}`);
  return p.docs[0];
}

// ---------------------------------------------------------------------------------------------
// Kubernetes helpers
// ---------------------------------------------------------------------------------------------

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; [k: string]: unknown };
  [k: string]: any;
  __file: string;
}

/** Every Kubernetes object (multi-document) in the YAML files under `dir`. */
export function loadK8sObjects(dir: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const rel of listRepoFiles(dir, ['.yaml', '.yml'])) {
    const p = parseYamlFile(rel);
    if (p.problems.length) throw new Error(p.problems.join('\n'));
    for (const d of p.docs) {
      if (d && typeof d === 'object') out.push({ ...(d as object), __file: rel } as K8sObject);
    }
  }
  return out;
}

/** The pod template spec of a workload, or undefined. */
export function podSpecOf(obj: K8sObject): any | undefined {
  if (['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job'].includes(obj.kind)) return obj.spec?.template?.spec;
  if (obj.kind === 'Pod') return obj.spec;
  return undefined;
}

export function allContainers(podSpec: any): any[] {
  return [...(podSpec?.initContainers ?? []), ...(podSpec?.containers ?? [])];
}

/** True for the orcheo-authz container (by name or image), whose variables must all be known. */
export function isAuthzContainer(c: { name?: string; image?: string }): boolean {
  return c.name === 'orcheo-authz' || /(^|\/)orcheo-authz(:|@|$)/.test(c.image ?? '');
}

/** Port number of `host:port` / `[v6]:port`; undefined when absent. */
export function portOfAddr(addr: string | undefined): number | undefined {
  if (!addr) return undefined;
  const m = /:(\d+)$/.exec(addr);
  return m ? Number(m[1]) : undefined;
}

export function hostOfAddr(addr: string): string {
  return addr.replace(/:(\d+)$/, '').replace(/^\[|\]$/g, '');
}

// ---------------------------------------------------------------------------------------------
// Envoy protos
// ---------------------------------------------------------------------------------------------

/** Envoy proto files loaded by default: the bootstrap plus every extension the deploy configs use. */
export const ENVOY_PROTO_FILES = [
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/service/auth/v3/external_auth.proto',
  'xds/type/v3/typed_struct.proto',
  'udpa/type/v1/typed_struct.proto',
];

function protoIncludeDirs(): string[] {
  const xds = path.dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  const deps = ['envoy-api', 'googleapis', 'xds', 'protoc-gen-validate'].map((d) => path.join(xds, 'deps', d));
  // google/protobuf/descriptor.proto (imported by validate.proto and the udpa annotations).
  deps.push(path.dirname(require.resolve('protobufjs/package.json')));
  for (const d of deps) if (!fs.existsSync(d)) throw new Error(`proto include dir missing: ${d}`);
  return deps;
}

const rootCache = new Map<string, protobuf.Root>();

/** Load (and cache) a protobufjs Root holding Envoy's canonical types. */
export function loadEnvoyRoot(files: readonly string[] = ENVOY_PROTO_FILES): protobuf.Root {
  const key = files.join('\n');
  const cached = rootCache.get(key);
  if (cached) return cached;
  const dirs = protoIncludeDirs();
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string => {
    if (path.isAbsolute(target)) return target;
    for (const d of dirs) {
      const full = path.join(d, target);
      if (fs.existsSync(full)) return full;
    }
    return target; // google/protobuf well-known types bundled with protobufjs
  };
  root.loadSync([...files], { keepCase: true });
  root.resolveAll();
  rootCache.set(key, root);
  return root;
}

// ---------------------------------------------------------------------------------------------
// Strict walker
// ---------------------------------------------------------------------------------------------

export interface ValidateOptions {
  /** Fields and enum values marked `deprecated = true` are errors unless this is set. */
  allowDeprecated?: boolean;
}

export interface ValidationResult {
  errors: string[];
  /** Every message type the walker visited (e.g. to assert that Any payloads were really checked). */
  visitedTypes: Set<string>;
  /** protoc-gen-validate rules present on visited fields that the walker does not enforce. */
  unenforcedRules: Set<string>;
}

const WRAPPERS: Record<string, string> = {
  'google.protobuf.DoubleValue': 'double',
  'google.protobuf.FloatValue': 'float',
  'google.protobuf.Int64Value': 'int64',
  'google.protobuf.UInt64Value': 'uint64',
  'google.protobuf.Int32Value': 'int32',
  'google.protobuf.UInt32Value': 'uint32',
  'google.protobuf.BoolValue': 'bool',
  'google.protobuf.StringValue': 'string',
  'google.protobuf.BytesValue': 'bytes',
};

/** Well-known types whose JSON form is not an object of fields; inside Any they go under "value". */
const SPECIAL_JSON_TYPES = new Set([
  ...Object.keys(WRAPPERS),
  'google.protobuf.Duration',
  'google.protobuf.Timestamp',
  'google.protobuf.Struct',
  'google.protobuf.Value',
  'google.protobuf.ListValue',
  'google.protobuf.FieldMask',
  'google.protobuf.Any',
]);

const DURATION_RE = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;
const TIMESTAMP_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const BASE64_RE = /^(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?$/;

const INT_RANGES: Record<string, [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  sint32: [-(2n ** 31n), 2n ** 31n - 1n],
  sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  sint64: [-(2n ** 63n), 2n ** 63n - 1n],
  sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  fixed64: [0n, 2n ** 64n - 1n],
};

function snakeToCamel(s: string): string {
  return s.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** protoc-gen-validate options of a field or oneof as a nested object: {string: {min_len: 1}}. */
function pgvRules(options: Record<string, unknown> | undefined): Record<string, any> {
  const rules: Record<string, any> = {};
  if (!options) return rules;
  const setPath = (keys: string[], value: unknown): void => {
    let cur = rules;
    keys.slice(0, -1).forEach((k) => {
      if (!isPlainObject(cur[k])) cur[k] = {};
      cur = cur[k];
    });
    const last = keys[keys.length - 1] as string;
    if (isPlainObject(value) && isPlainObject(cur[last])) Object.assign(cur[last], value);
    else cur[last] = value;
  };
  for (const [k, v] of Object.entries(options)) {
    if (k === '(validate.rules)' && isPlainObject(v)) for (const [k2, v2] of Object.entries(v)) setPath([k2], v2);
    else if (k.startsWith('(validate.rules).')) setPath(k.slice('(validate.rules).'.length).split('.'), v);
  }
  return rules;
}

function durationNanos(d: { seconds?: number | string; nanos?: number }): bigint {
  return BigInt(d.seconds ?? 0) * 1_000_000_000n + BigInt(d.nanos ?? 0);
}

function parseDurationNanos(s: string): bigint | undefined {
  const m = DURATION_RE.exec(s);
  if (!m) return undefined;
  const nanos = BigInt(m[2] as string) * 1_000_000_000n + BigInt(((m[3] ?? '') + '000000000').slice(0, 9));
  return m[1] ? -nanos : nanos;
}

const HEADER_NAME_RE = /^:?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+$/;
const HEADER_VALUE_RE = /^[^\0\r\n]*$/;

class Walker {
  readonly errors: string[] = [];
  readonly visitedTypes = new Set<string>();
  readonly unenforcedRules = new Set<string>();

  constructor(
    private readonly root: protobuf.Root,
    private readonly opts: ValidateOptions,
  ) {}

  private err(p: string, msg: string): void {
    this.errors.push(`${p}: ${msg}`);
  }

  private lookupTypeUrl(url: unknown, p: string): protobuf.Type | undefined {
    if (typeof url !== 'string' || !url.includes('/')) {
      this.err(p, `"@type" must be a type URL like type.googleapis.com/<message>, got ${describe(url)}`);
      return undefined;
    }
    const name = url.slice(url.lastIndexOf('/') + 1);
    try {
      return this.root.lookupType(name);
    } catch {
      this.err(p, `unresolvable type URL "${url}" (no message ${name} in the loaded Envoy protos)`);
      return undefined;
    }
  }

  message(type: protobuf.Type, value: unknown, p: string): void {
    const full = type.fullName.replace(/^\./, '');
    this.visitedTypes.add(full);
    if (SPECIAL_JSON_TYPES.has(full)) {
      this.wellKnown(full, value, p);
      return;
    }
    if (!isPlainObject(value)) {
      this.err(p, `expected a mapping for ${full}, got ${describe(value)}`);
      return;
    }
    const byName = new Map<string, protobuf.Field>();
    for (const f of type.fieldsArray) {
      byName.set(f.name, f);
      byName.set(snakeToCamel(f.name), f);
      const jsonName = (f.options as Record<string, unknown> | undefined)?.['json_name'];
      if (typeof jsonName === 'string') byName.set(jsonName, f);
    }
    const seen = new Map<string, string>();
    for (const [key, v] of Object.entries(value)) {
      const kp = `${p}.${key}`;
      const field = byName.get(key);
      if (!field) {
        this.err(kp, `unknown field "${key}" in ${full}`);
        continue;
      }
      const prev = seen.get(field.name);
      if (prev !== undefined) {
        this.err(kp, `field ${field.name} given twice ("${prev}" and "${key}")`);
        continue;
      }
      seen.set(field.name, key);
      if (field.options?.['deprecated'] === true && !this.opts.allowDeprecated) {
        this.err(kp, `field ${full}.${field.name} is deprecated`);
      }
      this.field(field, v, kp);
    }
    // oneofs: at most one member; exactly one when (validate.required) is set.
    for (const oneof of type.oneofsArray) {
      const members = oneof.fieldsArray.filter((f) => seen.has(f.name));
      const isSynthetic = oneof.name.startsWith('_') && oneof.fieldsArray.length === 1;
      if (members.length > 1 && !isSynthetic) {
        this.err(p, `oneof ${full}.${oneof.name} has more than one member set: ${members.map((f) => f.name).join(', ')}`);
      }
      if (members.length === 0 && oneof.options?.['(validate.required)'] === true) {
        this.err(p, `oneof ${full}.${oneof.name} requires one of: ${oneof.fieldsArray.map((f) => f.name).join(', ')}`);
      }
    }
    // required fields (protoc-gen-validate)
    for (const f of type.fieldsArray) {
      if (seen.has(f.name) || f.partOf) continue; // rules on oneof members apply only when set
      const r = pgvRules(f.options);
      if (r['message']?.required === true || r['any']?.required === true || r['duration']?.required === true) {
        this.err(p, `required field ${f.name} of ${full} is missing`);
      } else if ((r['repeated']?.min_items ?? 0) > 0) {
        this.err(p, `field ${f.name} of ${full} needs at least ${r['repeated'].min_items} item(s)`);
      } else if (((r['string']?.min_len ?? 0) > 0 || (r['string']?.min_bytes ?? 0) > 0) && r['string']?.ignore_empty !== true) {
        this.err(p, `required string field ${f.name} of ${full} is missing (min_len ${r['string'].min_len ?? r['string'].min_bytes})`);
      } else if ((r['map']?.min_pairs ?? 0) > 0) {
        this.err(p, `field ${f.name} of ${full} needs at least ${r['map'].min_pairs} entr(y/ies)`);
      }
    }
  }

  private field(field: protobuf.Field, v: unknown, p: string): void {
    const rules = pgvRules(field.options);
    if (v === null && !(field.resolvedType && field.resolvedType.fullName === '.google.protobuf.Value')) {
      this.err(p, 'null is not a value; omit the field instead');
      return;
    }
    if (field instanceof protobuf.MapField) {
      if (!isPlainObject(v)) {
        this.err(p, `expected a mapping (map<${field.keyType}, ${field.type}>), got ${describe(v)}`);
        return;
      }
      const entries = Object.entries(v);
      if (rules['map']?.min_pairs !== undefined && entries.length < rules['map'].min_pairs) this.err(p, `needs at least ${rules['map'].min_pairs} entries`);
      if (rules['map']?.max_pairs !== undefined && entries.length > rules['map'].max_pairs) this.err(p, `allows at most ${rules['map'].max_pairs} entries`);
      for (const [k, item] of entries) {
        this.mapKey(field.keyType, k, `${p}[${JSON.stringify(k)}]`);
        if (rules['map']?.keys) this.applyScalarRules(field.keyType, k, rules['map'].keys, `${p}[${JSON.stringify(k)}]`);
        this.single(field, item, `${p}.${k}`, rules['map']?.values ?? {});
      }
      return;
    }
    if (field.repeated) {
      if (!Array.isArray(v)) {
        this.err(p, `expected a list for repeated field ${field.name}, got ${describe(v)}`);
        return;
      }
      const rr = rules['repeated'] ?? {};
      if (rr.min_items !== undefined && v.length < rr.min_items) this.err(p, `needs at least ${rr.min_items} item(s)`);
      if (rr.max_items !== undefined && v.length > rr.max_items) this.err(p, `allows at most ${rr.max_items} item(s)`);
      if (rr.unique === true && new Set(v.map((x) => JSON.stringify(x))).size !== v.length) this.err(p, 'items must be unique');
      v.forEach((item, i) => this.single(field, item, `${p}[${i}]`, rr.items ?? {}));
      return;
    }
    this.single(field, v, p, rules);
  }

  private single(field: protobuf.Field, v: unknown, p: string, rules: Record<string, any>): void {
    if (v === null && field.resolvedType?.fullName !== '.google.protobuf.Value') {
      this.err(p, 'null is not a value');
      return;
    }
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Enum) {
      this.enumValue(rt, v, p, rules['enum'] ?? {});
      return;
    }
    if (rt instanceof protobuf.Type) {
      const full = rt.fullName.replace(/^\./, '');
      this.message(rt, v, p);
      const wrapped = WRAPPERS[full];
      if (wrapped !== undefined && v !== null && v !== undefined) this.applyScalarRules(wrapped, v, rules, p);
      if (full === 'google.protobuf.Duration' && typeof v === 'string') this.durationRules(v, rules['duration'] ?? {}, p);
      if (full === 'google.protobuf.Any' && Array.isArray(rules['any']?.in) && isPlainObject(v) && !rules['any'].in.includes(v['@type'])) {
        this.err(p, `@type ${String(v['@type'])} not allowed here (allowed: ${rules['any'].in.join(', ')})`);
      }
      return;
    }
    this.scalar(field.type, v, p);
    this.applyScalarRules(field.type, v, rules, p);
  }

  private enumValue(en: protobuf.Enum, v: unknown, p: string, rules: Record<string, any>): void {
    let name: string | undefined;
    if (typeof v === 'string') {
      if (!(v in en.values)) {
        this.err(p, `"${v}" is not a value of enum ${en.fullName.replace(/^\./, '')} (${Object.keys(en.values).join(', ')})`);
        return;
      }
      name = v;
    } else if (typeof v === 'number' && Number.isInteger(v)) {
      name = en.valuesById[v];
      if (name === undefined) {
        this.err(p, `${v} is not a defined number of enum ${en.fullName.replace(/^\./, '')}`);
        return;
      }
    } else {
      this.err(p, `expected an enum name of ${en.fullName.replace(/^\./, '')}, got ${describe(v)}`);
      return;
    }
    const num = en.values[name] as number;
    const valueOptions = (en.valuesOptions ?? {})[name] as Record<string, unknown> | undefined;
    if (valueOptions?.['deprecated'] === true && !this.opts.allowDeprecated) this.err(p, `enum value ${name} is deprecated`);
    if (Array.isArray(rules['in']) && !rules['in'].includes(num)) this.err(p, `enum value ${name} not allowed here`);
    const notIn = rules['not_in'];
    if ((Array.isArray(notIn) && notIn.includes(num)) || notIn === num) this.err(p, `enum value ${name} not allowed here`);
  }

  private mapKey(keyType: string, k: string, p: string): void {
    if (keyType === 'string') return;
    if (keyType === 'bool') {
      if (k !== 'true' && k !== 'false') this.err(p, `map key must be true or false`);
      return;
    }
    if (INT_RANGES[keyType] && !/^-?\d+$/.test(k)) this.err(p, `map key must be an integer (${keyType})`);
  }

  private scalar(type: string, v: unknown, p: string): void {
    switch (type) {
      case 'string':
        if (typeof v !== 'string') this.err(p, `expected a string, got ${describe(v)}`);
        return;
      case 'bool':
        if (typeof v !== 'boolean') this.err(p, `expected true or false, got ${describe(v)}`);
        return;
      case 'bytes':
        if (typeof v !== 'string' || !BASE64_RE.test(v)) this.err(p, `expected base64 bytes, got ${describe(v)}`);
        return;
      case 'double':
      case 'float':
        if (typeof v === 'number') return;
        if (typeof v === 'string' && (/^(NaN|-?Infinity)$/.test(v) || (v.trim() !== '' && Number.isFinite(Number(v))))) return;
        this.err(p, `expected a number, got ${describe(v)}`);
        return;
      default: {
        const range = INT_RANGES[type];
        if (!range) {
          this.err(p, `unsupported scalar type ${type}`);
          return;
        }
        let n: bigint | undefined;
        if (typeof v === 'number' && Number.isInteger(v)) n = BigInt(v);
        else if (typeof v === 'string' && /^-?\d+$/.test(v)) n = BigInt(v);
        if (n === undefined) {
          this.err(p, `expected an integer (${type}), got ${describe(v)}`);
          return;
        }
        if (n < range[0] || n > range[1]) this.err(p, `${n} is out of range for ${type}`);
      }
    }
  }

  /** protoc-gen-validate scalar rules: {string: {min_len}}, {uint32: {gte}}, … */
  private applyScalarRules(type: string, v: unknown, rules: Record<string, any>, p: string): void {
    for (const [kind, rv] of Object.entries(rules)) {
      if (!isPlainObject(rv)) continue;
      const r = rv as Record<string, any>;
      if (kind === 'string' && typeof v === 'string') this.stringRules(v, r, p);
      else if (kind === 'bytes' && typeof v === 'string') {
        const len = Buffer.from(v, 'base64').length;
        if (r['min_len'] !== undefined && len < r['min_len']) this.err(p, `needs at least ${r['min_len']} byte(s)`);
        if (r['max_len'] !== undefined && len > r['max_len']) this.err(p, `allows at most ${r['max_len']} byte(s)`);
      } else if (kind === 'bool' && typeof v === 'boolean') {
        if (r['const'] !== undefined && v !== r['const']) this.err(p, `must be ${r['const']}`);
      } else if (['int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64', 'fixed32', 'fixed64', 'sfixed32', 'sfixed64', 'double', 'float'].includes(kind)) {
        const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
        if (Number.isNaN(n)) continue;
        if (r['gt'] !== undefined && !(n > r['gt'])) this.err(p, `${n} must be > ${r['gt']}`);
        if (r['gte'] !== undefined && !(n >= r['gte'])) this.err(p, `${n} must be >= ${r['gte']}`);
        if (r['lt'] !== undefined && !(n < r['lt'])) this.err(p, `${n} must be < ${r['lt']}`);
        if (r['lte'] !== undefined && !(n <= r['lte'])) this.err(p, `${n} must be <= ${r['lte']}`);
        if (r['const'] !== undefined && n !== r['const']) this.err(p, `${n} must be ${r['const']}`);
        for (const k of Object.keys(r)) if (!['gt', 'gte', 'lt', 'lte', 'const'].includes(k)) this.unenforcedRules.add(`${kind}.${k}`);
      } else if (!['enum', 'message', 'any', 'duration', 'repeated', 'map', 'timestamp'].includes(kind)) {
        this.unenforcedRules.add(kind);
      }
      void type;
    }
  }

  private stringRules(v: string, r: Record<string, any>, p: string): void {
    if (r['ignore_empty'] === true && v === '') return;
    const chars = [...v].length;
    const bytes = Buffer.byteLength(v);
    if (r['min_len'] !== undefined && chars < r['min_len']) this.err(p, `needs at least ${r['min_len']} character(s)`);
    if (r['max_len'] !== undefined && chars > r['max_len']) this.err(p, `allows at most ${r['max_len']} character(s)`);
    if (r['min_bytes'] !== undefined && bytes < r['min_bytes']) this.err(p, `needs at least ${r['min_bytes']} byte(s)`);
    if (r['max_bytes'] !== undefined && bytes > r['max_bytes']) this.err(p, `allows at most ${r['max_bytes']} byte(s)`);
    if (r['prefix'] !== undefined && !v.startsWith(r['prefix'])) this.err(p, `must start with ${r['prefix']}`);
    if (r['in'] !== undefined) {
      const allowed = Array.isArray(r['in']) ? r['in'] : [r['in']];
      if (!allowed.includes(v)) this.err(p, `"${v}" must be one of ${allowed.join(', ')}`);
    }
    if (r['pattern'] !== undefined) {
      try {
        if (!new RegExp(r['pattern'], 'u').test(v)) this.err(p, `"${v}" does not match ${r['pattern']}`);
      } catch {
        this.unenforcedRules.add(`string.pattern ${r['pattern']}`);
      }
    }
    if (r['well_known_regex'] === 'HTTP_HEADER_NAME' && !HEADER_NAME_RE.test(v)) this.err(p, `"${v}" is not a valid HTTP header name`);
    if (r['well_known_regex'] === 'HTTP_HEADER_VALUE' && !HEADER_VALUE_RE.test(v)) this.err(p, `not a valid HTTP header value`);
    for (const k of Object.keys(r)) {
      if (!['ignore_empty', 'min_len', 'max_len', 'min_bytes', 'max_bytes', 'prefix', 'in', 'pattern', 'well_known_regex', 'strict'].includes(k)) this.unenforcedRules.add(`string.${k}`);
    }
  }

  private durationRules(v: string, r: Record<string, any>, p: string): void {
    const n = parseDurationNanos(v);
    if (n === undefined) return;
    if (isPlainObject(r['gt']) && !(n > durationNanos(r['gt']))) this.err(p, `${v} must be > ${durationNanos(r['gt'])}ns`);
    if (isPlainObject(r['gte']) && !(n >= durationNanos(r['gte']))) this.err(p, `${v} must be >= ${durationNanos(r['gte'])}ns`);
    if (isPlainObject(r['lt']) && !(n < durationNanos(r['lt']))) this.err(p, `${v} must be < ${durationNanos(r['lt'])}ns`);
    if (isPlainObject(r['lte']) && !(n <= durationNanos(r['lte']))) this.err(p, `${v} must be <= ${durationNanos(r['lte'])}ns`);
  }

  private wellKnown(full: string, v: unknown, p: string): void {
    const wrapped = WRAPPERS[full];
    if (wrapped !== undefined) {
      this.scalar(wrapped, v, p);
      return;
    }
    switch (full) {
      case 'google.protobuf.Duration': {
        const n = typeof v === 'string' ? parseDurationNanos(v) : undefined;
        if (n === undefined) this.err(p, `expected a duration string like "0.25s", got ${describe(v)}`);
        else if (n > 315_576_000_000n * 1_000_000_000n || n < -315_576_000_000n * 1_000_000_000n) this.err(p, 'duration out of range');
        return;
      }
      case 'google.protobuf.Timestamp':
        if (typeof v !== 'string' || !TIMESTAMP_RE.test(v) || Number.isNaN(Date.parse(v))) this.err(p, `expected an RFC 3339 timestamp, got ${describe(v)}`);
        return;
      case 'google.protobuf.Struct':
        if (!isPlainObject(v)) this.err(p, `expected a mapping (Struct), got ${describe(v)}`);
        else this.jsonValue(v, p);
        return;
      case 'google.protobuf.ListValue':
        if (!Array.isArray(v)) this.err(p, `expected a list (ListValue), got ${describe(v)}`);
        else this.jsonValue(v, p);
        return;
      case 'google.protobuf.Value':
        this.jsonValue(v, p);
        return;
      case 'google.protobuf.FieldMask':
        if (typeof v !== 'string') this.err(p, `expected a field mask string, got ${describe(v)}`);
        return;
      case 'google.protobuf.Any':
        this.any(v, p);
        return;
    }
  }

  private jsonValue(v: unknown, p: string): void {
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) this.err(p, 'non-finite number in a Struct');
      return;
    }
    if (Array.isArray(v)) {
      v.forEach((x, i) => this.jsonValue(x, `${p}[${i}]`));
      return;
    }
    if (isPlainObject(v)) {
      for (const [k, x] of Object.entries(v)) this.jsonValue(x, `${p}.${k}`);
      return;
    }
    this.err(p, `not a JSON value: ${describe(v)}`);
  }

  private any(v: unknown, p: string): void {
    if (!isPlainObject(v)) {
      this.err(p, `expected a mapping with "@type" (Any), got ${describe(v)}`);
      return;
    }
    if (!('@type' in v)) {
      this.err(p, 'Any without "@type"');
      return;
    }
    const t = this.lookupTypeUrl(v['@type'], `${p}.@type`);
    if (!t) return;
    const full = t.fullName.replace(/^\./, '');
    const { '@type': _ignored, ...rest } = v;
    if (SPECIAL_JSON_TYPES.has(full)) {
      const keys = Object.keys(rest);
      if (keys.length !== 1 || keys[0] !== 'value') this.err(p, `an Any holding ${full} must have exactly the key "value"`);
      else this.message(t, rest['value'], `${p}.value`);
      return;
    }
    this.message(t, rest, p);
    // TypedStruct: validate the embedded struct against its own type_url as well.
    if ((full === 'xds.type.v3.TypedStruct' || full === 'udpa.type.v1.TypedStruct') && isPlainObject(rest)) {
      const url = rest['type_url'] ?? rest['typeUrl'];
      const inner = this.lookupTypeUrl(url, `${p}.type_url`);
      if (inner && rest['value'] !== undefined) this.message(inner, rest['value'], `${p}.value`);
    }
  }
}

/** Strictly validate `value` (parsed YAML/JSON) as the proto message `typeName`. */
export function validateEnvoyMessage(root: protobuf.Root, typeName: string, value: unknown, opts: ValidateOptions = {}): ValidationResult {
  const w = new Walker(root, opts);
  w.message(root.lookupType(typeName), value, '$');
  return { errors: w.errors, visitedTypes: w.visitedTypes, unenforcedRules: w.unenforcedRules };
}

/** Strictly validate a whole Envoy bootstrap config. */
export function validateEnvoyBootstrap(value: unknown, opts: ValidateOptions = {}): ValidationResult {
  return validateEnvoyMessage(loadEnvoyRoot(), 'envoy.config.bootstrap.v3.Bootstrap', value, opts);
}

// ---------------------------------------------------------------------------------------------
// Envoy config navigation (used by the semantic checks)
// ---------------------------------------------------------------------------------------------

export const EXT_AUTHZ_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz';
export const EXT_AUTHZ_PER_ROUTE_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute';
export const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const ROUTER_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
export const HTTP_PROTOCOL_OPTIONS_TYPE = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
export const UPSTREAM_TLS_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

export interface HcmInfo {
  listener: any;
  hcm: any;
}

export function listeners(cfg: any): any[] {
  return cfg?.static_resources?.listeners ?? [];
}

export function clusters(cfg: any): any[] {
  return cfg?.static_resources?.clusters ?? [];
}

export function clusterByName(cfg: any, name: string): any | undefined {
  return clusters(cfg).find((c) => c.name === name);
}

export function httpConnectionManagers(cfg: any): HcmInfo[] {
  const out: HcmInfo[] = [];
  for (const l of listeners(cfg)) {
    for (const chain of l.filter_chains ?? []) {
      for (const f of chain.filters ?? []) {
        if (f.typed_config?.['@type'] === HCM_TYPE) out.push({ listener: l, hcm: f.typed_config });
      }
    }
  }
  return out;
}

/** socket_address entries of a cluster's static load assignment. */
export function clusterEndpoints(cluster: any): { address: string; port: number }[] {
  const out: { address: string; port: number }[] = [];
  for (const e of cluster?.load_assignment?.endpoints ?? []) {
    for (const lb of e.lb_endpoints ?? []) {
      const sa = lb.endpoint?.address?.socket_address;
      if (sa) out.push({ address: sa.address, port: Number(sa.port_value) });
    }
  }
  return out;
}

export interface EnvoyConfigSource {
  /** e.g. deploy/envoy/envoy.yaml or deploy/k8s/sidecar/configmap-envoy.yaml#orcheo-envoy/envoy.yaml */
  name: string;
  config: any;
}

/**
 * Every Envoy bootstrap in the repository: deploy/envoy/*.yaml plus any ConfigMap under deploy/k8s
 * whose data entry is a YAML document with static_resources (the sidecar's embedded envoy.yaml).
 */
export function envoyConfigSources(): EnvoyConfigSource[] {
  const out: EnvoyConfigSource[] = [];
  for (const rel of listRepoFiles('deploy/envoy', ['.yaml', '.yml'])) out.push({ name: rel, config: loadYaml(rel) });
  for (const obj of loadK8sObjects('deploy/k8s')) {
    if (obj.kind !== 'ConfigMap') continue;
    for (const [key, text] of Object.entries<string>(obj['data'] ?? {})) {
      if (!/\.ya?ml$/.test(key)) continue;
      const p = parseYamlText(text, `${obj.__file}#${obj.metadata.name}/${key}`);
      if (p.problems.length) throw new Error(p.problems.join('\n'));
      const doc = p.docs[0] as any;
      if (doc && typeof doc === 'object' && 'static_resources' in doc) out.push({ name: p.file, config: doc });
    }
  }
  return out;
}
