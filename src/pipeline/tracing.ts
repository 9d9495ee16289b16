import { context, propagation, SpanKind, SpanStatusCode, trace, type TextMapGetter } from '@opentelemetry/api';
import type { CheckFn } from './check';
import type { RawCheckRequest } from './request';

type Headers = Record<string, string>;

const getter: TextMapGetter<Headers> = {
  keys: (c) => Object.keys(c),
  get: (c, k) => c[k],
};

const TRACE_HEADERS = new Set(['traceparent', 'tracestate', 'baggage']);

/**
 * The W3C trace headers, from `headers` or, with Envoy's `encode_raw_headers`, from `header_map`
 * (values possibly raw bytes). Only these few names are read: no other header is copied.
 */
function traceHeaders(req: RawCheckRequest | null | undefined): Headers {
  const http = req?.attributes?.request?.http;
  const out: Headers = {};
  for (const [k, v] of Object.entries(http?.headers ?? {})) {
    const name = k.toLowerCase();
    if (TRACE_HEADERS.has(name)) out[name] = String(v);
  }
  for (const h of http?.header_map?.headers ?? []) {
    const name = h.key?.toLowerCase();
    if (!name || !TRACE_HEADERS.has(name) || out[name] !== undefined) continue;
    out[name] = h.raw_value && h.raw_value.length > 0 ? Buffer.from(h.raw_value).toString('latin1') : (h.value ?? '');
  }
  return out;
}

/**
 * True when an OpenTelemetry SDK has registered a tracer provider (e.g. the process was started
 * with `--require @opentelemetry/auto-instrumentations-node/register`). Without one, the API hands
 * out non-recording spans, and we skip tracing altogether so Check pays nothing for it.
 */
export function tracingEnabled(): boolean {
  const probe = trace.getTracer('orcheo-authz').startSpan('probe');
  const on = probe.isRecording();
  probe.end();
  return on;
}

/**
 * Wraps Check in a server span that continues the proxied request's trace (W3C `traceparent` from
 * the request headers Envoy forwards). Attributes name the decision and deny code only: never a
 * token, a subject or a header value.
 */
export function withTracing(check: CheckFn): CheckFn {
  const tracer = trace.getTracer('orcheo-authz');
  return async (req: RawCheckRequest | null | undefined) => {
    const headers = traceHeaders(req);
    const parent = propagation.extract(context.active(), headers, getter);
    return tracer.startActiveSpan('envoy.service.auth.v3.Authorization/Check', { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc' } }, parent, async (span) => {
      try {
        const res = await check(req);
        span.setAttribute('orcheo_authz.decision', res.ok_response ? 'allow' : 'deny');
        if (!res.ok_response) {
          span.setAttribute('orcheo_authz.code', res.status.message);
          span.setAttribute('http.response.status_code', res.denied_response?.status.code ?? 0);
        }
        return res;
      } catch (err) {
        span.setStatus({ code: SpanStatusCode.ERROR });
        throw err;
      } finally {
        span.end();
      }
    });
  };
}
