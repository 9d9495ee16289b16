import type { Logger } from 'pino';
import { looksLikeJwt } from '../authn/service-token';
import { ANONYMOUS, type Authenticator, type AuthnOptions, type AuthnResult, type Identity } from '../authn/types';
import { applyContextExtensions, evaluatePolicy, type Policy, type Requirement } from '../authz/policy';
import { DEFAULT_DENY_LOG_RATE, type AuthMode } from '../config/types';
import type { RateLimiter } from '../ratelimit/types';
import { LIMITER_RETRY_AFTER, rateLimit, type Attempt } from './rate-limit';
import { resolveClientIp } from '../ratelimit/client-ip';
import { AuthError, isAuthError, plainDeny } from '../errors/deny';
import { authorize, identityKey } from './authorize';
import type { CheckFn, Decision, DecideFn, MaybePromise, Outcome, RequestParts } from './decision';
import { extractCredential, type Credential } from './extract';
import { createDecisionLog } from './decision-log';
import { identityHeaders, spoofedHeaders } from './identity-headers';
import { buildExplanation, credentialKind, type Explanation, type Trace } from './explain';
import { decisionId } from './request-id';
import { isCorsPreflight, toCheckInput, type CheckInput } from './request';

export type { CheckFn, DecideFn, Decision, Outcome } from './decision';
export type { Explanation } from './explain';

/** The Check pipeline, plus its non-counting twin for `POST /api/admin/explain`. */
export interface CheckPipeline extends CheckFn {
  /**
   * The same Check, synchronous whenever every phase is (a cached credential, no rate-limit round
   * trip): the gRPC front door answers in the same tick, without a promise per phase. Never throws.
   */
  readonly decide: DecideFn;
  /** Writes the counts of sampled-away deny lines (at shutdown). */
  flushLog(): void;
  /** The same phases as a Check, recording nothing: no limiter increment, no observers, no log line. */
  explain(parts: RequestParts): Promise<Explanation>;
}

export interface PipelineDeps {
  /** The global mode for this request (an unset mode becomes `required` once a credential source exists). */
  readonly mode: () => AuthMode;
  readonly authenticator: Authenticator;
  readonly policy: () => Policy;
  readonly limiter?: RateLimiter | undefined;
  readonly limits: { readonly ip: number; readonly identity: number; readonly xffTrustedHops: number };
  readonly logger: Logger;
  readonly sensitiveDebug?: boolean;
  readonly now?: () => number;
  readonly observe?: (o: Outcome) => void;
  /** ORCHEO_AUTH_DRY_RUN: every route is shadow (a would-be denial is logged, counted and allowed). */
  readonly dryRun?: boolean | undefined;
  /** `request denied` lines per code per second (ORCHEO_AUTH_DENY_LOG_RATE; Infinity: every one). */
  readonly denyLogRate?: number | undefined;
}

interface Verdict extends Attempt {
  identity?: Identity | undefined;
  key?: string | undefined;
}

/** One request on its way through the phases (one object instead of a closure per phase). */
interface Ctx {
  readonly input: CheckInput;
  readonly requestId: string;
  readonly trace: Trace | undefined;
  req: Requirement | undefined;
  cred: Credential | undefined;
}

/**
 * While the token index is stale, the service-token kind answers an unknown non-JWT token with 503
 * (it may exist on another replica). Counting those against the IP keeps guessing throttled exactly
 * when known tokens still work. JWT-shaped 503s (key provider down) are not the caller's doing.
 */
function storeCouldNotTell(token: string, err: AuthError, key: string | undefined): boolean {
  return err.code === 'auth.backend_unavailable' && key === undefined && !looksLikeJwt(token);
}

/** `f(x)` now when `x` is a value, after it settles when it is a promise: the phases stay synchronous until one is not. */
function then<T, R>(x: MaybePromise<T>, f: (v: T) => MaybePromise<R>): MaybePromise<R> {
  return x instanceof Promise ? x.then(f) : f(x);
}

const NONE: readonly string[] = Object.freeze([]);

/**
 * The decision pipeline: extract credentials → identify → authorize → rate limit → respond.
 * `check` always resolves to a wire-neutral Decision (each front door maps it to its answer): an unexpected failure in any phase is logged and
 * becomes a 503 deny (`auth.backend_unavailable`), never an exception and never an allow.
 */
export function createCheckPipeline(deps: PipelineDeps): CheckPipeline {
  const now = deps.now ?? Date.now;
  const { logger } = deps;
  const log = createDecisionLog(logger, deps.denyLogRate ?? DEFAULT_DENY_LOG_RATE, now);

  const toVerdict = (token: string, r: AuthnResult): Verdict => {
    if (r.kind === 'identified') return { identity: r.identity };
    if (r.kind === 'rejected') return { error: r.error, key: r.identityKey, unknownDuringOutage: storeCouldNotTell(token, r.error, r.identityKey) };
    return { error: plainDeny('auth.invalid_token') };
  };

  function identify(token: string, opts: AuthnOptions | undefined, trace: Trace | undefined): MaybePromise<Verdict> {
    return then(deps.authenticator.authenticate(token, now(), trace ? { ...opts, quiet: true } : opts), (r) => toVerdict(token, r));
  }

  const clientIpOf = (input: CheckInput): string => resolveClientIp(input.sourceAddress, input.headers.get('x-forwarded-for'), deps.limits.xffTrustedHops);

  function allow(c: Ctx, identity: Identity, shadow?: AuthError): Decision {
    const req = c.req;
    return {
      allow: true,
      requestId: c.requestId,
      input: c.input,
      requirement: req,
      identity,
      headers: identityHeaders(identity),
      headersToRemove: spoofedHeaders(c.input.headers, identity),
      queryParamsToRemove: c.cred?.queryParam ? [c.cred.queryParam] : NONE,
      shadow,
      outcome: { decision: 'allow', identity, matched: req?.matched, shadowCode: shadow?.code },
    };
  }

  const noteKind = (c: Ctx, v: Verdict): void => {
    if (c.trace && c.cred) Object.assign(c.trace, { kind: credentialKind(c.cred.token, v), authError: v.error, identity: v.identity });
  };

  function decide(input: CheckInput, requestId: string, trace?: Trace): MaybePromise<Decision> {
    const c: Ctx = { input, requestId, trace, req: undefined, cred: undefined };
    const mode = deps.mode();
    if (mode === 'disabled' || isCorsPreflight(input)) return allow(c, ANONYMOUS);

    const req = (c.req = applyContextExtensions(evaluatePolicy(deps.policy(), input.method, input.path), input.contextExtensions));
    const routeMode = req.auth ?? mode;

    let v: Verdict | undefined;
    try {
      c.cred = extractCredential(input);
    } catch (err) {
      if (!isAuthError(err)) throw err;
      v = { error: err };
      if (trace) trace.authError = err;
    }
    const cred = c.cred;
    if (trace) trace.credential = cred && { via: cred.via, queryParam: cred.queryParam };

    if (routeMode === 'public') {
      // Valid credentials still yield identity headers; invalid ones are ignored, never counted.
      // Offline: an anonymous caller must never make a public route wait on a JWKS refetch.
      if (!cred) return allow(c, ANONYMOUS);
      return then(identify(cred.token, { offline: true }, trace), (who) => {
        noteKind(c, who);
        return allow(c, who.identity ?? ANONYMOUS);
      });
    }

    const verdict: MaybePromise<Verdict> = v ?? (cred ? identify(cred.token, undefined, trace) : routeMode === 'optional' ? { identity: ANONYMOUS } : { error: plainDeny('auth.missing_token') });
    return then(verdict, (v) => afterIdentify(c, req, v));
  }

  function afterIdentify(c: Ctx, req: Requirement, identified: Verdict): MaybePromise<Decision> {
    let v = identified;
    noteKind(c, v);
    if (v.identity?.authenticated) {
      const denied = authorize(v.identity, req);
      if (denied) v = { error: denied, key: identityKey(v.identity), identity: v.identity };
      else v.key = identityKey(v.identity);
    }
    return then(rateLimit(deps, clientIpOf, c.input, v, c.trace), (limited) => respond(c, req, v, limited));
  }

  function respond(c: Ctx, req: Requirement, v: Verdict, limited: AuthError | undefined): Decision {
    const error = limited ?? v.error;
    if (error && (req.enforce === false || deps.dryRun)) {
      // Shadow: decided and counted in full above, allowed here. A limiter's refusal (429, or 503 when
      // failing closed) passes no identity: the limiter is what stops credential guessing, and an
      // identity reaching the upstream would tell the guesser which guess was right.
      return allow(c, limited || !v.identity?.authenticated ? ANONYMOUS : v.identity, error);
    }
    if (!error) return allow(c, v.identity ?? ANONYMOUS);
    return {
      allow: false,
      requestId: c.requestId,
      input: c.input,
      requirement: req,
      error,
      tokenPresented: c.cred !== undefined,
      outcome: { decision: 'deny', code: error.code, identity: v.identity, matched: req.matched },
    };
  }

  const errorFields = (err: unknown) => (err instanceof Error ? { type: err.name, message: err.message, stack: deps.sensitiveDebug ? err.stack : undefined } : String(err));

  /** Observers (metrics, audit, logs) run after the decision and can never change or fail it. */
  function observe(decision: Decision): Decision {
    try {
      deps.observe?.(decision.outcome);
    } catch (err) {
      logger.error({ err: errorFields(err) }, 'check observer failed; decision unchanged');
    }
    try {
      log.decided(decision, clientIpOf);
    } catch {
      // A logger that throws must not turn a decision into an error either.
    }
    return decision;
  }

  const denied = (error: AuthError, requestId: string): Decision => ({
    allow: false,
    requestId,
    input: undefined,
    requirement: undefined,
    error,
    tokenPresented: false,
    outcome: { decision: 'deny', code: error.code },
  });

  /**
   * A request that cannot be read and an unexpected failure are denied even in shadow: neither was
   * decided in full (no rule was evaluated, or a phase broke), and a failure is never an allow.
   */
  function failed(err: unknown, requestId: string, input: CheckInput | undefined, trace: Trace | undefined): Decision {
    if (isAuthError(err)) {
      // toCheckInput refusing a path it cannot read unambiguously: a deny with its code, not a 503.
      try {
        if (!trace) log.unreadable(err.code, err.detail, requestId);
      } catch {
        // Logging never changes a decision.
      }
      return denied(err, requestId);
    }
    // A bug or an unexpected backend failure: fail closed with a stable, retryable code.
    logger.error({ err: errorFields(err), path: input?.path, request_id: requestId, explain: trace ? true : undefined }, 'check failed; denying');
    return denied(new AuthError('auth.backend_unavailable', undefined, { retryAfterSeconds: LIMITER_RETRY_AFTER }), requestId);
  }

  /** Both entries' core: never throws, never rejects. */
  function run(parts: RequestParts, trace?: Trace): MaybePromise<Decision> {
    let input: CheckInput | undefined;
    let requestId = 'unknown';
    try {
      requestId = decisionId(parts.headers);
      input = toCheckInput(parts);
      const d = decide(input, requestId, trace);
      if (!(d instanceof Promise)) return d;
      const read = input;
      return d.catch((err: unknown) => failed(err, requestId, read, trace));
    } catch (err) {
      return failed(err, requestId, input, trace);
    }
  }

  const decideFn: DecideFn = (parts) => then(run(parts), observe);
  const check = ((parts: RequestParts): Promise<Decision> => Promise.resolve(decideFn(parts))) as CheckPipeline & { decide: DecideFn };
  check.decide = decideFn;
  check.flushLog = log.flush;

  check.explain = async (parts: RequestParts): Promise<Explanation> => {
    const trace: Trace = { windows: [] };
    const decision = await run(parts, trace);
    const { input } = decision;
    const { ip, identity } = deps.limits;
    return buildExplanation({
      decision,
      trace,
      mode: deps.mode(),
      dryRun: deps.dryRun === true,
      policyOrigin: deps.policy().origin,
      clientIp: input && clientIpOf(input),
      limitsOn: deps.limiter !== undefined && (ip > 0 || identity > 0),
      nowMs: now(),
    });
  };
  return check;
}
