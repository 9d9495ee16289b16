import type { CliSettings } from './profile';

/** The server refused the request: HTTP status plus the contract's `{message, code}`. */
export class ApiRefusal extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'ApiRefusal';
  }
}

/** The server could not be reached or did not answer like the admin API. */
export class ApiUnreachable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ApiUnreachable';
  }
}

const REQUEST_TIMEOUT_MS = 30_000;

const CAUSES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_SOCKET: 'connection closed',
};

function describeFetchError(err: unknown): string {
  const e = err as { name?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  const code = e?.cause?.code;
  if (code && CAUSES[code]) return CAUSES[code]!;
  if (code) return code;
  return (e?.cause?.message ?? (err as Error)?.message ?? 'unknown error').slice(0, 200);
}

/** A minimal client of the admin API at `settings.apiUrl`, authenticated by the service token. */
export class AdminApiClient {
  constructor(private readonly settings: CliSettings) {}

  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    return this.call<T>(method, `/api/admin/service-tokens${path}`, body);
  }

  /** Any admin API path (`/api/admin/…`), with the same auth and error mapping. */
  async call<T = unknown>(method: string, apiPath: string, body?: unknown): Promise<T> {
    const url = `${this.settings.apiUrl}${apiPath}`;
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'orcheo-authz-cli' };
    if (this.settings.serviceToken) headers.authorization = `Bearer ${this.settings.serviceToken}`;
    let payload: string | undefined;
    if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body: payload, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), redirect: 'error' });
    } catch (err) {
      throw new ApiUnreachable(
        `Cannot reach the Orcheo API at ${this.settings.apiUrl} (${describeFetchError(err)}). ` +
          `Is the server running? Set ORCHEO_API_URL, --api-url or api_url in ${this.settings.profilePath}.`,
      );
    }
    const text = await res.text().catch(() => '');
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (res.ok) {
      if (json === undefined) throw new ApiUnreachable(`Unexpected answer from ${this.settings.apiUrl} (HTTP ${res.status}, not JSON): is this the orcheo-authz admin API?`);
      return json as T;
    }
    const err = json as { message?: unknown; code?: unknown } | undefined;
    if (err && typeof err.message === 'string' && typeof err.code === 'string') throw new ApiRefusal(res.status, err.code, err.message);
    throw new ApiRefusal(res.status, `http.${res.status}`, `HTTP ${res.status} ${res.statusText || ''}`.trim());
  }
}
