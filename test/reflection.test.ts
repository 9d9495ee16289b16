/**
 * Server reflection as `grpcurl list` / `grpcurl describe` / `grpcurl -d … Check` use it, from a client
 * that knows no proto of ours: only the reflection protocol's own protos (shipped by @grpc/reflection).
 * For v1 and v1alpha: list services; fetch file_containing_symbol for the Authorization service and
 * then every dependency by file_by_filename until the set is closed; check the files link the way
 * protodesc (grpcurl, buf curl) links them (every referenced type defined in the file itself or in a
 * file it imports); build a protobufjs Root from the returned FileDescriptorProtos and call
 * Authorization/Check (v3 and v2) and grpc.health.v1.Health/Check and Watch with that schema alone.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';
import * as descriptor from 'protobufjs/ext/descriptor';
import { startTestApp, type TestApp } from './helpers/app';

const BOOT = 'reflection-bootstrap-secret-0123456789abcdef';
const V3 = 'envoy.service.auth.v3.Authorization';
const V2 = 'envoy.service.auth.v2.Authorization';
const HEALTH = 'grpc.health.v1.Health';

// ---------------------------------------------------------------------------------------------
// A reflection client (its own protocol only)
// ---------------------------------------------------------------------------------------------

const REFLECTION_PROTO_DIR = path.join(path.dirname(require.resolve('@grpc/reflection')), '..', 'proto');
const reflectionPkg = grpc.loadPackageDefinition(
  protoLoader.loadSync(['grpc/reflection/v1/reflection.proto', 'grpc/reflection/v1alpha/reflection.proto'], {
    includeDirs: [REFLECTION_PROTO_DIR],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  }),
) as any;

type Version = 'v1' | 'v1alpha';

/** One ServerReflectionInfo stream; each request gets exactly one response, in order. */
class ReflectionSession {
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<any, any>;
  private readonly waiting: Array<{ resolve(r: any): void; reject(e: Error): void }> = [];
  private readonly ended: Promise<void>;

  constructor(port: number, version: Version) {
    const Ctor = reflectionPkg.grpc.reflection[version].ServerReflection;
    this.client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    this.call = (this.client as any).ServerReflectionInfo();
    this.call.on('data', (r: any) => this.waiting.shift()?.resolve(r));
    this.ended = new Promise((resolve) => {
      this.call.on('error', (e: Error) => {
        for (const w of this.waiting.splice(0)) w.reject(e);
        resolve();
      });
      this.call.on('status', () => resolve());
    });
  }

  ask(req: Record<string, unknown>): Promise<any> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.call.write({ host: '', ...req });
    });
  }

  async close(): Promise<void> {
    this.call.end();
    await this.ended;
    this.client.close();
  }
}

type FileProto = descriptor.IFileDescriptorProto & { name: string };

function decodeFiles(resp: any, what: string): FileProto[] {
  if (resp.error_response) throw new Error(`${what}: error ${resp.error_response.error_code}: ${resp.error_response.error_message}`);
  assert.equal(resp.message_response, 'file_descriptor_response', `${what}: unexpected response ${JSON.stringify(resp)}`);
  const bufs: Buffer[] = resp.file_descriptor_response.file_descriptor_proto;
  assert.ok(bufs.length > 0, `${what}: no file descriptors`);
  return bufs.map((b) => descriptor.FileDescriptorProto.toObject(descriptor.FileDescriptorProto.decode(b), { defaults: false }) as FileProto);
}

interface Closure {
  /** Files in the order received; the first answers file_containing_symbol. */
  files: Map<string, FileProto>;
  first: FileProto;
  /** file_by_filename requests the server could not answer. */
  errors: string[];
}

/** file_containing_symbol, then file_by_filename for every import not received yet, until closed. */
async function fetchClosure(s: ReflectionSession, symbol: string): Promise<Closure> {
  const got = decodeFiles(await s.ask({ file_containing_symbol: symbol }), `file_containing_symbol ${symbol}`);
  const files = new Map<string, FileProto>();
  const errors: string[] = [];
  for (const f of got) if (!files.has(f.name)) files.set(f.name, f);
  const requested = new Set<string>();
  for (;;) {
    const missing = [...files.values()].flatMap((f) => (f.dependency ?? []) as string[]).filter((d) => !files.has(d) && !requested.has(d));
    if (missing.length === 0) break;
    for (const name of missing) {
      requested.add(name);
      try {
        for (const f of decodeFiles(await s.ask({ file_by_filename: name }), `file_by_filename ${name}`)) if (!files.has(f.name)) files.set(f.name, f);
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
  }
  return { files, first: got[0] as FileProto, errors };
}

/**
 * What protodesc.NewFile (grpcurl describe, buf curl) checks when it links a file: every type a
 * field or method names is defined in that file or in a file it imports (or that an import
 * re-exports publicly). Error text modelled on protodesc's.
 */
function linkErrors(files: Map<string, FileProto>): string[] {
  const definedIn = new Map<string, string>();
  const defineMessages = (scope: string, msgs: any[] | undefined, file: string): void => {
    for (const m of msgs ?? []) {
      const full = `${scope}.${m.name}`;
      definedIn.set(full, file);
      for (const e of m.enumType ?? []) definedIn.set(`${full}.${e.name}`, file);
      defineMessages(full, m.nestedType, file);
    }
  };
  for (const f of files.values()) {
    const scope = f.package ? `.${f.package}` : '';
    defineMessages(scope, f.messageType as any[], f.name);
    for (const e of (f.enumType ?? []) as any[]) definedIn.set(`${scope}.${e.name}`, f.name);
    for (const s of (f.service ?? []) as any[]) definedIn.set(`${scope}.${s.name}`, f.name);
  }
  const resolve = (scope: string, ref: string): string | undefined => {
    if (ref.startsWith('.')) return definedIn.has(ref) ? ref : undefined;
    for (let sc = scope; ; sc = sc.slice(0, Math.max(0, sc.lastIndexOf('.')))) {
      const cand = `${sc}.${ref}`;
      if (definedIn.has(cand)) return cand;
      if (!sc) return undefined;
    }
  };
  const errors: string[] = [];
  for (const f of files.values()) {
    const visible = new Set<string>([f.name]);
    const addPublic = (name: string): void => {
      const d = files.get(name);
      for (const i of (d?.publicDependency ?? []) as number[]) {
        const n = (d?.dependency as string[])[i] as string;
        if (!visible.has(n)) {
          visible.add(n);
          addPublic(n);
        }
      }
    };
    for (const dep of (f.dependency ?? []) as string[]) {
      visible.add(dep);
      addPublic(dep);
    }
    const check = (where: string, scope: string, ref: string | undefined): void => {
      if (!ref) return;
      const full = resolve(scope, ref);
      if (!full) errors.push(`${f.name}: ${where}: unknown type ${ref}`);
      else if (!visible.has(definedIn.get(full) as string)) errors.push(`${f.name}: ${where}: resolved "${full.slice(1)}", but "${definedIn.get(full)}" is not imported`);
    };
    const walk = (scope: string, msgs: any[] | undefined): void => {
      for (const m of msgs ?? []) {
        const full = `${scope}.${m.name}`;
        for (const fld of m.field ?? []) check(`${full.slice(1)}.${fld.name}`, full, fld.typeName);
        walk(full, m.nestedType);
      }
    };
    const scope = f.package ? `.${f.package}` : '';
    walk(scope, f.messageType as any[]);
    for (const s of (f.service ?? []) as any[]) {
      for (const m of s.method ?? []) {
        check(`${scope.slice(1)}.${s.name}.${m.name} input`, scope, m.inputType);
        check(`${scope.slice(1)}.${s.name}.${m.name} output`, scope, m.outputType);
      }
    }
  }
  return errors;
}

type FromDescriptor = { fromDescriptor(set: unknown): protobuf.Root };

/** A schema built only from what reflection returned. */
function rootOf(c: Closure): protobuf.Root {
  const set = descriptor.FileDescriptorSet.fromObject({ file: [...c.files.values()] } as unknown as Record<string, unknown>);
  const root = (protobuf.Root as unknown as FromDescriptor).fromDescriptor(set);
  root.resolveAll();
  return root;
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, defaults: false, oneofs: true };

/** Unary call with a schema-less grpc-js client: bytes in, bytes out, protobufjs on both ends. */
function unary(port: number, method: protobuf.Method, req: Record<string, unknown>): Promise<protobuf.Message> {
  const reqType = method.resolvedRequestType as protobuf.Type;
  const resType = method.resolvedResponseType as protobuf.Type;
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const svc = (method.parent as protobuf.Service).fullName.slice(1);
  return new Promise<protobuf.Message>((resolve, reject) => {
    client.makeUnaryRequest(
      `/${svc}/${method.name}`,
      (o: protobuf.Message) => Buffer.from(reqType.encode(o).finish()),
      (b: Buffer) => resType.decode(b),
      reqType.fromObject(req),
      { deadline: Date.now() + 5000 },
      (err, res) => (err ? reject(err) : resolve(res as protobuf.Message)),
    );
  }).finally(() => client.close());
}

/** `headers` is a map in the proto; protobufjs' fromDescriptor keeps it as repeated entries. */
function headersValue(root: protobuf.Root, h: Record<string, string>): unknown {
  const field = root.lookupType('envoy.service.auth.v3.AttributeContext.HttpRequest').fields.headers;
  assert.ok(field, 'reflected HttpRequest has no headers field');
  return field.map ? h : Object.entries(h).map(([key, value]) => ({ key, value }));
}

function checkRequest(root: protobuf.Root, headers: Record<string, string>): Record<string, unknown> {
  return {
    attributes: {
      source: { address: { socket_address: { address: '127.0.0.1', port_value: 40000 } } },
      request: { http: { method: 'GET', path: '/api/workflows', host: 'api.example.com', protocol: 'HTTP/1.1', headers: headersValue(root, headers) } },
    },
  };
}

/** A Struct field value, whether protobufjs decoded the `fields` map as an object or as entries. */
function structField(st: any, key: string): any {
  const fields = st?.fields;
  if (Array.isArray(fields)) return fields.find((e: { key: string }) => e.key === key)?.value;
  return fields?.[key];
}

const headerMap = (hs: any[] | undefined): Record<string, string> => Object.fromEntries((hs ?? []).map((h) => [h.header.key, h.header.value]));

// ---------------------------------------------------------------------------------------------

describe('server reflection (no protos on the client)', () => {
  let t: TestApp;
  let port: number;

  before(async () => {
    t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT }, 'auto');
    port = t.app.grpcPort;
  });
  after(async () => {
    await t?.stop();
  });

  for (const version of ['v1', 'v1alpha'] as const) {
    describe(`grpc.reflection.${version}.ServerReflection`, () => {
      let s: ReflectionSession;
      before(() => {
        s = new ReflectionSession(port, version);
      });
      after(async () => {
        await s?.close();
      });

      test('list_services names the Authorization (v3, v2) and Health services', async () => {
        const r = await s.ask({ list_services: '*' });
        assert.equal(r.message_response, 'list_services_response', JSON.stringify(r));
        const names = r.list_services_response.service.map((x: { name: string }) => x.name);
        for (const n of [V3, V2, HEALTH]) assert.ok(names.includes(n), `${n} not listed: ${names.join(', ')}`);
      });

      test('unknown symbol and unknown file are NOT_FOUND errors, not crashes', async () => {
        const a = await s.ask({ file_containing_symbol: 'no.such.Service' });
        assert.equal(a.error_response?.error_code, grpc.status.NOT_FOUND, JSON.stringify(a));
        const b = await s.ask({ file_by_filename: 'no/such/file.proto' });
        assert.equal(b.error_response?.error_code, grpc.status.NOT_FOUND, JSON.stringify(b));
      });

      test('describe: file_containing_symbol + every import by file_by_filename closes and links (grpcurl describe)', async () => {
        const c = await fetchClosure(s, V3);
        assert.equal(c.first.package, 'envoy.service.auth.v3');
        assert.ok((c.first.service ?? []).some((x) => x.name === 'Authorization'), `first file ${c.first.name} does not declare Authorization`);
        assert.deepStrictEqual(c.errors, [], 'imports the server could not serve by file_by_filename');
        assert.deepStrictEqual(linkErrors(c.files), [], 'the returned files do not link (grpcurl describe / buf curl fail here)');
        // The real file layout of proto/, not files merged per package.
        const names = [...c.files.keys()];
        for (const f of ['envoy/service/auth/v3/external_auth.proto', 'envoy/service/auth/v3/attribute_context.proto', 'envoy/config/core/v3/base.proto', 'envoy/type/v3/http_status.proto', 'google/rpc/status.proto', 'google/protobuf/struct.proto']) {
          assert.ok(names.includes(f), `describe did not return ${f} (got ${names.join(', ')})`);
        }
      });

      test('Check (v3) with the reflected schema: no token → 401 auth.missing_token; bootstrap token → allow as bootstrap', async () => {
        const root = rootOf(await fetchClosure(s, V3));
        const check = root.lookupService(V3).methods.Check as protobuf.Method;
        const resType = root.lookupType('envoy.service.auth.v3.CheckResponse');

        const deny = await unary(port, check, checkRequest(root, {}));
        const d = resType.toObject(deny, TO_OBJECT);
        assert.equal(d.http_response, 'denied_response');
        assert.deepStrictEqual(d.status, { code: grpc.status.UNAUTHENTICATED, message: 'auth.missing_token' });
        assert.equal(d.denied_response.status.code, 'Unauthorized');
        assert.equal(resType.toObject(deny, { ...TO_OBJECT, enums: Number }).denied_response.status.code, 401);
        const body = JSON.parse(d.denied_response.body);
        assert.equal(body.code, 'auth.missing_token');
        assert.equal(body.message, 'Missing bearer token');
        const dh = headerMap(d.denied_response.headers);
        assert.equal(dh['content-type'], 'application/json');
        assert.equal(dh['www-authenticate'], 'Bearer');

        const allow = await unary(port, check, checkRequest(root, { authorization: `Bearer ${BOOT}`, 'x-orcheo-subject': 'spoofed' }));
        const a = resType.toObject(allow, TO_OBJECT);
        assert.equal(a.http_response, 'ok_response', JSON.stringify(a));
        assert.equal(a.status?.code ?? 0, 0);
        const ah = headerMap(a.ok_response.headers);
        assert.equal(ah['x-orcheo-subject'], 'bootstrap');
        assert.equal(ah['x-orcheo-authenticated'], 'true');
        assert.equal(ah['x-orcheo-token-id'], 'bootstrap');
        assert.equal(ah['x-orcheo-workspaces'], '*');
        for (const h of a.ok_response.headers) assert.ok(h.append && (h.append.value ?? false) === false, `append not false on ${h.header.key}`);
        assert.equal(structField(a.dynamic_metadata, 'subject')?.string_value, 'bootstrap', JSON.stringify(a.dynamic_metadata));
        assert.equal(structField(a.dynamic_metadata, 'authenticated')?.bool_value, true);
      });

      test('Check (v2) with the schema reflected for envoy.service.auth.v2.Authorization', async () => {
        const root = rootOf(await fetchClosure(s, V2));
        const check = root.lookupService(V2).methods.Check as protobuf.Method;
        const resType = check.resolvedResponseType as protobuf.Type;
        const a = resType.toObject(await unary(port, check, checkRequest(root, { authorization: `Bearer ${BOOT}` })), TO_OBJECT);
        assert.equal(headerMap(a.ok_response?.headers)['x-orcheo-subject'], 'bootstrap', JSON.stringify(a));
        const d = resType.toObject(await unary(port, check, checkRequest(root, { authorization: 'Bearer nope' })), TO_OBJECT);
        assert.equal(d.denied_response?.status?.code, 'Unauthorized', JSON.stringify(d));
        assert.equal(JSON.parse(d.denied_response.body).code, 'auth.invalid_token');
      });

      test('grpc.health.v1.Health with the reflected schema: Check → SERVING, unknown → NOT_FOUND, Watch streams SERVING', async () => {
        const root = rootOf(await fetchClosure(s, HEALTH));
        const svc = root.lookupService(HEALTH);
        const resType = root.lookupType('grpc.health.v1.HealthCheckResponse');
        for (const name of ['', V3]) {
          const r = resType.toObject(await unary(port, svc.methods.Check as protobuf.Method, { service: name }), { enums: String });
          assert.equal(r.status, 'SERVING', `health of "${name}"`);
        }
        await assert.rejects(unary(port, svc.methods.Check as protobuf.Method, { service: 'no.such.Service' }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);

        const watch = svc.methods.Watch as protobuf.Method;
        const reqType = watch.resolvedRequestType as protobuf.Type;
        const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
        try {
          const call = client.makeServerStreamRequest(
            `/${HEALTH}/Watch`,
            (o: protobuf.Message) => Buffer.from(reqType.encode(o).finish()),
            (b: Buffer) => resType.decode(b),
            reqType.fromObject({ service: V3 }),
            new grpc.Metadata(),
            { deadline: Date.now() + 5000 },
          );
          const first = await new Promise<protobuf.Message>((resolve, reject) => {
            call.once('data', resolve);
            call.once('error', reject);
          });
          call.on('error', () => {}); // CANCELLED after cancel() below
          assert.equal(resType.toObject(first, { enums: String }).status, 'SERVING');
          call.cancel();
        } finally {
          client.close();
        }
      });
    });
  }
});
