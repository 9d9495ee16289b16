import { context, propagation, SpanKind, SpanStatusCode, trace, type TextMapGetter } from '@opentelemetry/api';
import type { CheckFn, RequestParts } from './decision';

type Headers = Record<string, string>;

const getter: TextMapGetter<Headers> = {
  keys: (c) => Object.keys(c),
  get: (c, k) => c[k],
};

const TRACE_HEADERS = new Set(['traceparent', 'tracestate', 'baggage']);

/** The W3C trace headers only: no other header is copied into the trace context. */
function traceHeaders(req: RequestParts): Headers {
  const out: Headers = {};
  for (const name of TRACE_HEADERS) {
    const v = req.headers.get(name);
    if (v !== undefined) out[name] = v;
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
  return async (req: RequestParts) => {
    const headers = traceHeaders(req);
    const parent = propagation.extract(context.active(), headers, getter);
    return tracer.startActiveSpan('envoy.service.auth.v3.Authorization/Check', { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc' } }, parent, async (span) => {
      try {
        const d = await check(req);
        span.setAttribute('orcheo_authz.decision', d.allow ? 'allow' : 'deny');
        if (!d.allow) {
          span.setAttribute('orcheo_authz.code', d.error.code);
          span.setAttribute('http.response.status_code', d.error.httpStatus);
        }
        return d;
      } catch (err) {
        span.setStatus({ code: SpanStatusCode.ERROR });
        throw err;
      } finally {
        span.end();
      }
    });
  };
}
