import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from 'pino';
import type { DecideFn, Decision, RequestParts } from '../pipeline/decision';
import { decodeCheckRequest } from './decode';
import { fromCheckRequest, type RawCheckRequest } from './request';
import { encodeCheckResponse } from './response';
import { AUTHZ_V2, AUTHZ_V3, loadPackageDefinition, loadReflectionDefinition } from './descriptors';
import { serverOptions, type ConnectionLimits } from './server-options';

export interface GrpcServerOptions {
  readonly host: string;
  readonly port: number;
  readonly credentials?: grpc.ServerCredentials;
  /** Answered in the same tick when the decision is synchronous. */
  readonly check: DecideFn;
  readonly logger: Logger;
  /** Connection lifetime bounds (CONNECTION_LIMITS when unset); tests shorten them. */
  readonly connection?: ConnectionLimits | undefined;
}

export interface GrpcServer {
  readonly port: number;
  setServing(serving: boolean): void;
  /** Stops accepting calls, lets in-flight ones finish (bounded by graceMs), then closes. */
  shutdown(graceMs: number): Promise<void>;
}

const HEALTH_NAMES = ['', AUTHZ_V3, AUTHZ_V2];

function serviceDefinition(pkg: ReturnType<typeof loadPackageDefinition>, name: string, requestDeserialize?: (b: Buffer) => unknown): grpc.ServiceDefinition {
  const def = pkg[name] as unknown as grpc.ServiceDefinition | undefined;
  if (!def || !('Check' in def)) throw new Error(`service ${name} missing from the proto definitions`);
  // The handler answers with bytes already encoded (response.ts: cached parts + per-request fields):
  // encoding a CheckResponse object with protobufjs was the largest cost of a Check.
  const check = def.Check!;
  const encode = check.responseSerialize;
  const responseSerialize = (res: object): Buffer => (Buffer.isBuffer(res) ? res : encode(res));
  return { ...def, Check: { ...check, responseSerialize, ...(requestDeserialize ? { requestDeserialize } : {}) } };
}

/** One per process: it holds only the descriptors it answers from, and building it costs ~15-50 ms per server start. */
let reflectionService: ReflectionService | undefined;
const reflection = (): ReflectionService => (reflectionService ??= new ReflectionService(loadReflectionDefinition()));

export async function startGrpcServer(opts: GrpcServerOptions): Promise<GrpcServer> {
  const pkg = loadPackageDefinition();
  const server = new grpc.Server(serverOptions(opts.connection));
  const internal = (err: unknown): grpc.ServiceError => {
    opts.logger.error({ err: (err as Error)?.message }, 'check handler failed');
    return Object.assign(new Error('internal error'), { code: grpc.status.INTERNAL, details: 'internal error', metadata: new grpc.Metadata() });
  };
  // v3 requests arrive already read into RequestParts (decode.ts); v2 ones as proto-loader objects.
  const handler = <Req>(toParts: (req: Req) => RequestParts): grpc.handleUnaryCall<Req, Buffer> => (call, callback) => {
    let parts: RequestParts;
    try {
      parts = toParts(call.request);
    } catch {
      parts = { headers: new Map<string, string>() };
    }
    // The pipeline never throws or rejects and encoding never throws; the guards are against a defect.
    const reply = (d: Decision): void => {
      let bytes: Buffer;
      try {
        bytes = encodeCheckResponse(d);
      } catch (err) {
        return callback(internal(err));
      }
      callback(null, bytes);
    };
    let d;
    try {
      d = opts.check(parts);
    } catch (err) {
      return callback(internal(err));
    }
    if (d instanceof Promise) d.then(reply, (err: unknown) => callback(internal(err)));
    else reply(d);
  };
  server.addService(serviceDefinition(pkg, AUTHZ_V3, decodeCheckRequest), { Check: handler<RequestParts>((parts) => parts) as grpc.UntypedHandleCall });
  server.addService(serviceDefinition(pkg, AUTHZ_V2), { Check: handler<RawCheckRequest>(fromCheckRequest) as grpc.UntypedHandleCall });

  const health = new HealthImplementation(Object.fromEntries(HEALTH_NAMES.map((n) => [n, 'NOT_SERVING'])));
  health.addToServer(server);
  reflection().addToServer(server);

  const port = await new Promise<number>((resolve, reject) => {
    const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
    server.bindAsync(`${host}:${opts.port}`, opts.credentials ?? grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });

  return {
    port,
    setServing(serving: boolean): void {
      for (const n of HEALTH_NAMES) health.setStatus(n, serving ? 'SERVING' : 'NOT_SERVING');
    },
    shutdown(graceMs: number): Promise<void> {
      for (const n of HEALTH_NAMES) health.setStatus(n, 'NOT_SERVING');
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
