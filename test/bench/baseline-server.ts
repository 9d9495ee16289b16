/**
 * The baseline the bench divides by: a bare @grpc/grpc-js server with the service's own proto
 * definitions and channel options, whose Check answers without deciding anything.
 *
 * With BENCH_BASELINE_REPLIES (a JSON file written by run.ts) it answers each request with the very
 * bytes the service answered for the same request (chosen by the `authorization` header), already
 * encoded, as the service's encode-once cache does: the ratio then prices exactly our decision and
 * our plumbing, not the size of the answer. Without it, it answers an empty OK (the old baseline,
 * ~10 bytes instead of ~400, which made every path look twice as slow as it is).
 *
 * Run as a child process by run.ts: `node dist/test/bench/baseline-server.js`; it prints
 * `{"baseline":"ready","port":N}` on stdout and exits on SIGTERM.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { decodeCheckRequest } from '../../src/grpc/decode';
import { AUTHZ_V3, loadPackageDefinition } from '../../src/grpc/descriptors';
import type { RequestParts } from '../../src/pipeline/decision';
import { serverOptions } from '../../src/grpc/server-options';

const EMPTY_OK = { status: { code: 0, message: '' }, ok_response: { headers: [], headers_to_remove: [], query_parameters_to_remove: [] } };

/** authorization header value ('' when absent) → the service's encoded reply to that request. */
export interface BaselineReplies {
  readonly byAuthorization: Record<string, string>;
  readonly fallback: string;
}

interface Request {
  attributes?: { request?: { http?: { headers?: Record<string, string> } } };
}

/**
 * How the baseline reads the request: 'protobufjs' (proto-loader's deserializer, the bench's
 * baseline), 'ours' (src/grpc/decode.ts) or 'none' (never read). The last two are for decompose.ts.
 */
export type BaselineDecode = 'protobufjs' | 'ours' | 'none';

function decoder(decode: BaselineDecode): { requestDeserialize?: (b: Buffer) => unknown } {
  if (decode === 'none') return { requestDeserialize: (b: Buffer) => b };
  if (decode === 'ours') return { requestDeserialize: decodeCheckRequest };
  return {};
}

export async function startBaseline(port = 0, replies?: BaselineReplies, decode: BaselineDecode = 'protobufjs'): Promise<{ port: number; server: grpc.Server }> {
  const pkg = loadPackageDefinition();
  // The service's options (src/grpc/server-options.ts), so only the handler differs.
  const server = new grpc.Server(serverOptions());
  const def = pkg[AUTHZ_V3] as unknown as grpc.ServiceDefinition;
  if (!replies) {
    server.addService(def, { Check: ((_call, callback) => callback(null, EMPTY_OK)) as grpc.handleUnaryCall<unknown, unknown> });
  } else {
    const bytes = new Map(Object.entries(replies.byAuthorization).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
    const fallback = Buffer.from(replies.fallback, 'base64');
    // The handler hands the encoded reply straight to the serializer, which passes it through.
    const check = def['Check']!;
    const service = { ...def, Check: { ...check, responseSerialize: (b: Buffer) => b, ...decoder(decode) } } as grpc.ServiceDefinition;
    // One handler per mode, chosen here: the bench's baseline pays for nothing but its own lookup.
    const reply = (auth: string | undefined): Buffer => bytes.get(auth ?? '') ?? fallback;
    const handler: grpc.handleUnaryCall<never, Buffer> =
      decode === 'none'
        ? // It cannot tell requests apart: it answers the fallback (decompose.ts starts one per path).
          (_call, callback) => callback(null, fallback)
        : decode === 'ours'
          ? (call: grpc.ServerUnaryCall<RequestParts, Buffer>, callback) => callback(null, reply(call.request.headers.get('authorization')))
          : (call: grpc.ServerUnaryCall<Request, Buffer>, callback) => callback(null, reply(call.request?.attributes?.request?.http?.headers?.['authorization']));
    server.addService(service, { Check: handler as grpc.handleUnaryCall<unknown, unknown> });
  }
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port: bound, server };
}

if (require.main === module && !process.env['NODE_TEST_CONTEXT']) {
  const file = process.env['BENCH_BASELINE_REPLIES'];
  const replies = file ? (JSON.parse(readFileSync(file, 'utf8')) as BaselineReplies) : undefined;
  const decode = process.env['BENCH_BASELINE_DECODE'] ?? 'protobufjs';
  if (decode !== 'protobufjs' && decode !== 'ours' && decode !== 'none') throw new Error(`BENCH_BASELINE_DECODE must be protobufjs, ours or none, not ${decode}`);
  startBaseline(0, replies, decode).then(
    ({ port, server }) => {
      process.stdout.write(`${JSON.stringify({ baseline: 'ready', port })}\n`);
      // Nothing to drain: calls are answered synchronously.
      const stop = (): void => {
        server.forceShutdown();
        process.exit(0);
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    },
    (err: unknown) => {
      process.stderr.write(`baseline server failed: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
