import type { IncomingMessage, RequestOptions } from 'node:http';
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
  EPIPE: 'connection closed',
  ECONNABORTED: 'connection closed',
};

class RequestTimeout extends Error {}

/** A header from whatever answered, safe to print on a terminal. */
const printable = (s: string): string => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);

function describeRequestError(err: unknown): string {
  if (err instanceof RequestTimeout) return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  const code = (err as { code?: string })?.code;
  if (code && CAUSES[code]) return CAUSES[code]!;
  if (code) return code;
  return ((err as Error)?.message ?? 'unknown error').slice(0, 200);
}

interface Answer {
  readonly status: number;
  readonly statusText: string;
  readonly location: string | undefined;
  readonly text: string;
}

/**
 * One request with node:http(s), not fetch: loading fetch (undici) cost every CLI command ~40 ms of
 * start-up, more than the command itself. A redirect is never followed: the service token must
 * not travel to another origin.
 */
function send(url: URL, options: RequestOptions, payload: string | undefined): Promise<Answer> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { request } = (url.protocol === 'https:' ? require('node:https') : require('node:http')) as typeof import('node:http');
  return new Promise((resolve, reject) => {
    const req = request(url, options, (res: IncomingMessage) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', location: res.headers.location, text }));
      res.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(new RequestTimeout()), REQUEST_TIMEOUT_MS);
    req.on('close', () => clearTimeout(timer));
    req.on('error', reject);
    req.end(payload);
  });
}

/** A minimal client of the admin API at `settings.apiUrl`, authenticated by the service token. */
export class AdminApiClient {
  constructor(private readonly settings: CliSettings) {}

  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    return this.call<T>(method, `/api/admin/service-tokens${path}`, body);
  }

  /** Any admin API path (`/api/admin/…`), with the same auth and error mapping. */
  async call<T = unknown>(method: string, apiPath: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'orcheo-authz-cli' };
    if (this.settings.serviceToken) headers.authorization = `Bearer ${this.settings.serviceToken}`;
    let payload: string | undefined;
    if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    let res: Answer;
    try {
      res = await send(new URL(`${this.settings.apiUrl}${apiPath}`), { method, headers }, payload);
    } catch (err) {
      throw new ApiUnreachable(
        `Cannot reach the Orcheo API at ${this.settings.apiUrl} (${describeRequestError(err)}). ` +
          `Is the server running? Set ORCHEO_API_URL, --api-url or api_url in ${this.settings.profilePath}.`,
      );
    }
    if (res.status >= 300 && res.status < 400) {
      throw new ApiUnreachable(`${this.settings.apiUrl} answered with a redirect (HTTP ${res.status}${res.location ? ` to ${printable(res.location)}` : ''}), which the CLI does not follow: point --api-url at the orcheo-authz service itself.`);
    }
    const { text } = res;
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (res.status >= 200 && res.status < 300) {
      if (json === undefined) throw new ApiUnreachable(`Unexpected answer from ${this.settings.apiUrl} (HTTP ${res.status}, not JSON): is this the orcheo-authz admin API?`);
      return json as T;
    }
    const err = json as { message?: unknown; code?: unknown } | undefined;
    if (err && typeof err.message === 'string' && typeof err.code === 'string') throw new ApiRefusal(res.status, err.code, err.message);
    throw new ApiRefusal(res.status, `http.${res.status}`, `HTTP ${res.status} ${res.statusText || ''}`.trim());
  }
}
