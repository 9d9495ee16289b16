/** CheckRequest/CheckResponse as bytes, for clients that talk to the service below the generated stubs. */
import { AUTHZ_V3, loadPackageDefinition } from '../../src/grpc/descriptors';

type CheckMethod = { requestSerialize: (o: unknown) => Buffer; responseDeserialize: (b: Buffer) => never };
let checkMethod: CheckMethod | undefined;
/** Loading the protos costs milliseconds: once per process. */
function method(): CheckMethod {
  checkMethod ??= (loadPackageDefinition()[AUTHZ_V3] as unknown as { Check: CheckMethod }).Check;
  return checkMethod;
}

export function encodeCheckRequest(obj: unknown): Buffer {
  return method().requestSerialize(obj);
}

export function decodeCheckResponse(buf: Buffer): { status?: { code?: number; message?: string }; ok_response?: unknown; denied_response?: unknown } {
  return method().responseDeserialize(buf);
}
