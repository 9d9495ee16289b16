/**
 * The baseline the bench divides by: a bare @grpc/grpc-js server with the service's own proto
 * definitions and channel options, whose Check answers OK without looking at the request. Whatever
 * the real service costs beyond this is the price of its decision (and of its own plumbing).
 *
 * Run as a child process by run.ts: `node dist/test/bench/baseline-server.js`; it prints
 * `{"baseline":"ready","port":N}` on stdout and exits on SIGTERM.
 */
import * as grpc from '@grpc/grpc-js';
import { AUTHZ_V3, loadPackageDefinition } from '../../src/grpc/descriptors';

const OK = { status: { code: 0, message: '' }, ok_response: { headers: [], headers_to_remove: [], query_parameters_to_remove: [] } };

export async function startBaseline(port = 0): Promise<{ port: number; server: grpc.Server }> {
  const pkg = loadPackageDefinition();
  // Same options as src/grpc/server.ts, so only the handler differs.
  const server = new grpc.Server({
    'grpc.max_concurrent_streams': 10_000,
    'grpc.max_receive_message_length': 4 * 1024 * 1024,
    'grpc.keepalive_permit_without_calls': 1,
  });
  const handler: grpc.handleUnaryCall<unknown, typeof OK> = (_call, callback) => callback(null, OK);
  server.addService(pkg[AUTHZ_V3] as unknown as grpc.ServiceDefinition, { Check: handler });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port: bound, server };
}

if (require.main === module && !process.env['NODE_TEST_CONTEXT']) {
  startBaseline().then(
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
