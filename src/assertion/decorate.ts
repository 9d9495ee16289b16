import type { Logger } from 'pino';
import { AuthError } from '../errors/deny';
import type { AllowDecision, CheckFn, Decision, DenyDecision, Header } from '../pipeline/decision';
import { AssertionSigner, KeyUnavailableError } from './signer';

export interface AssertionOptions {
  readonly signer: AssertionSigner;
  /** Lower-cased header name (`x-orcheo-identity`). */
  readonly header: string;
  /** `ORCHEO_AUTH_ASSERTION_AUDIENCE`. */
  readonly audience?: string | undefined;
  readonly logger: Logger;
  /** Minimum interval between two "cannot sign" log lines. */
  readonly logEveryMs?: number;
}

const KEY_RETRY_AFTER_S = 5;

/** The request's host (Envoy sends it as `:authority`), lower-cased, as the last-resort audience. */
function requestHost(d: AllowDecision): string | undefined {
  const h = d.input?.headers;
  const v = h?.get(':authority') ?? h?.get('host');
  return v?.trim().toLowerCase() || undefined;
}

function deny(d: AllowDecision, error: AuthError): DenyDecision {
  return { allow: false, requestId: d.requestId, input: d.input, requirement: d.requirement, error, tokenPresented: true, outcome: { decision: 'deny', code: error.code, identity: d.identity, matched: d.outcome.matched } };
}

/**
 * Adds the signed identity assertion to every authenticated allow, whatever the front door. A
 * client-sent copy never reaches the upstream: an authenticated allow overwrites it, any other
 * allow removes it. When no key can sign, the allow becomes a 503 `auth.key_unavailable`: an
 * upstream that verifies would refuse the request anyway, and one that only checks the header's
 * presence must never be handed a request without it. Never rejects.
 */
export function withAssertions(check: CheckFn, opts: AssertionOptions): CheckFn {
  const name = opts.header;
  const logEvery = opts.logEveryMs ?? 10_000;
  let lastLog = -Infinity;
  const removeClientCopy = (d: AllowDecision): Decision =>
    d.input?.headers.has(name) && !d.headersToRemove.includes(name) ? { ...d, headersToRemove: [...d.headersToRemove, name] } : d;

  // One frozen header list per identity and current assertion: the gRPC layer encodes a response
  // for a frozen header list once and re-sends the bytes while the assertion is re-used.
  const lists = new WeakMap<readonly Header[], { jws: string; headers: readonly Header[] }>();
  const withAssertion = (base: readonly Header[], jws: string): readonly Header[] => {
    const hit = lists.get(base);
    if (hit?.jws === jws) return hit.headers;
    const headers = Object.freeze([...base, Object.freeze([name, jws] as const)]);
    lists.set(base, { jws, headers });
    return headers;
  };

  /** Signs on a cache miss; a failure is the deny (never a rejection, never an allow without it). */
  const sign = async (d: AllowDecision, audience: string): Promise<string | DenyDecision> => {
    try {
      return await opts.signer.assertion(d.identity, audience);
    } catch (err) {
      const now = Date.now();
      if (now - lastLog >= logEvery) {
        lastLog = now;
        opts.logger.error({ err: (err as Error).message, request_id: d.requestId }, 'cannot sign the identity assertion; denying with auth.key_unavailable');
      }
      const known = err instanceof KeyUnavailableError;
      return deny(d, new AuthError('auth.key_unavailable', undefined, { retryAfterSeconds: KEY_RETRY_AFTER_S, detail: known ? 'no assertion signing key' : 'assertion signing failed' }));
    }
  };

  return async (parts) => {
    const d = await check(parts);
    if (!d.allow) return d;
    if (!d.identity.authenticated) return removeClientCopy(d);
    const audience = d.requirement?.audience ?? opts.audience ?? requestHost(d);
    if (!audience) return deny(d, new AuthError('auth.invalid_request', 'Request has no host to address the identity assertion to', { detail: 'no assertion audience: set ORCHEO_AUTH_ASSERTION_AUDIENCE or a rule audience' }));
    const jws = opts.signer.cached(d.identity, audience) ?? (await sign(d, audience));
    if (typeof jws !== 'string') return jws;
    return {
      ...d,
      headers: withAssertion(d.headers, jws),
      headersToRemove: d.headersToRemove.includes(name) ? d.headersToRemove.filter((n) => n !== name) : d.headersToRemove,
    };
  };
}
