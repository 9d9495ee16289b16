import * as grpc from '@grpc/grpc-js';
import { AUTHZ_V3, loadPackageDefinition } from '../../src/grpc/descriptors';

export interface HttpAttrs {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  sourceIp?: string;
  contextExtensions?: Record<string, string>;
}

/** Builds a CheckRequest the way Envoy sends it (object form for proto-loader, keepCase). */
export function checkRequest(a: HttpAttrs): Record<string, unknown> {
  return {
    attributes: {
      source: { address: { socket_address: { address: a.sourceIp ?? '127.0.0.1', port_value: 40000 } } },
      request: { http: { method: a.method ?? 'GET', path: a.path ?? '/api/workflows', headers: a.headers ?? {}, host: 'api.example.com', protocol: 'HTTP/1.1' } },
      context_extensions: a.contextExtensions ?? {},
    },
  };
}

export interface CheckResult {
  status: { code: number; message?: string };
  ok_response?: {
    headers?: Array<{ header: { key: string; value: string }; append?: { value: boolean } }>;
    headers_to_remove?: string[];
    query_parameters_to_remove?: string[];
  };
  denied_response?: { status: { code: string | number }; headers?: Array<{ header: { key: string; value: string } }>; body: string };
  dynamic_metadata?: { fields: Record<string, { stringValue?: string; boolValue?: boolean }> };
}

/** A real gRPC client for envoy.service.auth.v3.Authorization (or v2) on a loopback port. */
export class AuthzClient {
  private readonly client: grpc.Client & { Check: grpc.requestCallback<CheckResult> & Function };

  constructor(port: number, service = AUTHZ_V3, creds: grpc.ChannelCredentials = grpc.credentials.createInsecure()) {
    const pkg = loadPackageDefinition();
    const Ctor = grpc.makeGenericClientConstructor(pkg[service] as grpc.ServiceDefinition, service);
    this.client = new Ctor(`127.0.0.1:${port}`, creds) as never;
  }

  raw(req: unknown, deadlineMs = 5000): Promise<CheckResult> {
    return new Promise((resolve, reject) => {
      (this.client.Check as Function).call(this.client, req, { deadline: Date.now() + deadlineMs }, (err: Error | null, res: CheckResult) => (err ? reject(err) : resolve(res)));
    });
  }

  check(a: HttpAttrs): Promise<CheckResult> {
    return this.raw(checkRequest(a));
  }

  close(): void {
    this.client.close();
  }
}

/** Upstream headers an allow response sets, as a plain map. */
export function okHeaders(r: CheckResult): Record<string, string> {
  return Object.fromEntries((r.ok_response?.headers ?? []).map((h) => [h.header.key, h.header.value]));
}

export function deniedHeaders(r: CheckResult): Record<string, string> {
  return Object.fromEntries((r.denied_response?.headers ?? []).map((h) => [h.header.key, h.header.value]));
}

/** HTTP status of a deny; proto-loader decodes the enum by name, so map the names we use. */
export function deniedStatus(r: CheckResult): number | undefined {
  const c = r.denied_response?.status?.code;
  const names: Record<string, number> = { BadRequest: 400, Unauthorized: 401, Forbidden: 403, TooManyRequests: 429, ServiceUnavailable: 503 };
  return typeof c === 'number' ? c : c === undefined ? undefined : names[c];
}

export function deniedBody(r: CheckResult): { message: string; code: string } {
  return JSON.parse(r.denied_response?.body ?? '{}');
}
