import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { FileDescriptorSet, FileDescriptorProto } = require('protobufjs/ext/descriptor') as {
  FileDescriptorSet: { decode(b: Uint8Array): unknown };
  FileDescriptorProto: { encode(m: never): { finish(): Uint8Array } };
};

/**
 * The FileDescriptorSet built from proto/ by `buf build` at `npm run build`. Feeding reflection real
 * descriptors (imports included) is what lets it answer `describe`: with proto-loader's synthetic
 * descriptors it can only `list` (grpc-node issue 2595).
 */
export const DESCRIPTOR_SET_PATH = join(__dirname, '..', '..', 'descriptors.binpb');

/** proto/ at the package root (dist/src/grpc → ../../../proto). */
export const PROTO_DIR = join(__dirname, '..', '..', '..', 'proto');

export const SERVICE_PROTOS = ['envoy/service/auth/v3/external_auth.proto', 'envoy/service/auth/v2/external_auth.proto', 'grpc/health/v1/health.proto'];

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
};

/**
 * The definitions the server and clients (de)serialise with, loaded from the .proto sources: the
 * descriptor-set loader turns `map<>` fields into repeated entry messages, which would change the
 * decoded shape of headers, context_extensions and Struct.
 */
export function loadPackageDefinition(): protoLoader.PackageDefinition {
  // Parsed once per process: every server start and test client used to parse the .proto sources
  // again (~20 ms each, ~50 ms the first time); grpc-js only reads the definitions.
  packageDefinition ??= protoLoader.loadSync(SERVICE_PROTOS, { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
  return packageDefinition;
}
let packageDefinition: protoLoader.PackageDefinition | undefined;

/**
 * What reflection serves: buf's FileDescriptorProtos byte for byte, wrapped as the one-entry package
 * definition @grpc/reflection reads. Going through proto-loader would re-create the files (merged
 * per package, empty dependency lists) and break `describe` again.
 */
export function loadReflectionDefinition(path = DESCRIPTOR_SET_PATH): protoLoader.PackageDefinition {
  if (!existsSync(path)) {
    throw new Error(`gRPC descriptor set not found at ${path}: run \`npm run build\` (it runs \`buf build proto\`)`);
  }
  const set = FileDescriptorSet.decode(readFileSync(path)) as unknown as { file: unknown[] };
  const fileDescriptorProtos = set.file.map((f) => FileDescriptorProto.encode(f as never).finish());
  return { 'orcheo.authz.descriptors': { format: 'Protocol Buffer 3 DescriptorProto', type: {}, fileDescriptorProtos } } as unknown as protoLoader.PackageDefinition;
}

export const AUTHZ_V3 = 'envoy.service.auth.v3.Authorization';
export const AUTHZ_V2 = 'envoy.service.auth.v2.Authorization';
