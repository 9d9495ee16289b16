import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';

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
  return protoLoader.loadSync(SERVICE_PROTOS, { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
}

/** The descriptor-set definitions served by reflection. */
export function loadReflectionDefinition(path = DESCRIPTOR_SET_PATH): protoLoader.PackageDefinition {
  if (!existsSync(path)) {
    throw new Error(`gRPC descriptor set not found at ${path}: run \`npm run build\` (it runs \`buf build proto\`)`);
  }
  return protoLoader.loadFileDescriptorSetFromBuffer(readFileSync(path), LOADER_OPTIONS);
}

export const AUTHZ_V3 = 'envoy.service.auth.v3.Authorization';
export const AUTHZ_V2 = 'envoy.service.auth.v2.Authorization';
