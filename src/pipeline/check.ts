import type { Logger } from 'pino';
import { looksLikeJwt } from '../authn/service-token';
import { ANONYMOUS, type Authenticator, type AuthnOptions, type Identity } from '../authn/types';
import { applyContextExtensions, evaluatePolicy, type Policy, type Requirement } from '../authz/policy';
import type { AuthMode } from '../config/types';
import { LimiterUnavailableError, type LimitQuery, type RateLimiter } from '../ratelimit/types';
import { resolveClientIp } from '../ratelimit/client-ip';
import { AuthError, isAuthError } from '../errors/deny';
import { authorize, identityKey } from './authorize';
import type { CheckFn, Decision, Outcome, RequestParts } from './decision';
import { extractCredential, type Credential } from './extract';
import { identityHeaders, spoofedHeaders } from './identity-headers';
import { buildExplanation, credentialKind, type Explanation, type Trace } from './explain';
import { decisionId } from './request-id';
import { isCorsPreflight, toCheckInput, type CheckInput } from './request';

export type { CheckFn, Decision, Outcome } from './decision';
export type { Explanation } from './explain';

/** The Check pipeline, plus its non-counting twin for `POST /api/admin/explain`. */
export interface CheckPipeline extends CheckFn {
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
}

interface Verdict {
  identity?: Identity | undefined;
  error?: AuthError | undefined;
  /** Whose failure this is, for the per-identity limit. */
  key?: string | undefined;
  /** A 503 for a token the store could not look up: still a failed attempt for its IP. */
  unknownDuringOutage?: boolean | undefined;
}

/**
 * While the token index is stale, the service-token kind answers an unknown non-JWT token with 503
 * (it may exist on another replica). Counting those against the IP keeps guessing throttled exactly
 * when known tokens still work. JWT-shaped 503s (key provider down) are not the caller's doing.
 */
function storeCouldNotTell(token: string, err: AuthError, key: string | undefined): boolean {
  return err.code === 'auth.backend_unavailable' && key === undefined && !looksLikeJwt(token);
}

const LIMITER_RETRY_AFTER = 5;

/**
 * The decision pipeline: extract credentials → identify → authorize → rate limit → respond.
 * `check` always resolves to a wire-neutral Decision (each front door maps it to its answer): an unexpected failure in any phase is logged and
 * becomes a 503 deny (`auth.backend_unavailable`), never an exception and never an allow.
 */
export function createCheckPipeline(deps: PipelineDeps): CheckPipeline {
  const now = deps.now ?? Date.now;
  const { logger } = deps;
  // Decision lines carry only code, method, normalised path, rule and its pattern, workspace (from the
  // path), subject and client IP — never a header or token — so they skip the redaction pass, which
  // cost ~16 µs of a ~20 µs log line.
  const decisions = logger.child({}, { redact: { paths: [] } });

  async function identify(token: string, opts: AuthnOptions | undefined, trace: Trace | undefined): Promise<Verdict> {
    const r = await deps.authenticator.authenticate(token, now(), trace ? { ...opts, quiet: true } : opts);
    if (r.kind === 'identified') return { identity: r.identity };
    if (r.kind === 'rejected') return { error: r.error, key: r.identityKey, unknownDuringOutage: storeCouldNotTell(token, r.error, r.identityKey) };
    return { error: new AuthError('auth.invalid_token') };
  }

  const clientIpOf = (input: CheckInput): string => resolveClientIp(input.sourceAddress, input.headers.get('x-forwarded-for'), deps.limits.xffTrustedHops);

  async function rateLimit(input: CheckInput, v: Verdict, trace: Trace | undefined): Promise<AuthError | undefined> {
    const { ip, identity } = deps.limits;
    if (!deps.limiter || (ip <= 0 && identity <= 0)) return undefined;
    const status = v.error?.httpStatus;
    const queries: LimitQuery[] = [];
    const clientIp = clientIpOf(input);
    if (ip > 0) queries.push({ key: `ip:${clientIp}`, limit: ip, failed: status === 401 || v.unknownDuringOutage === true });
    // `v.key` is already namespaced by kind (see identity-key.ts).
    if (identity > 0 && v.key !== undefined) queries.push({ key: `id:${v.key}`, limit: identity, failed: status === 401 || status === 403 });
    if (queries.length === 0) return undefined;
    let verdicts;
    try {
      if (trace) {
        // Explain: the verdicts evaluate would give, from a read that records nothing.
        const states = await deps.limiter.peek(queries);
        trace.windows = queries.map((q, i) => ({ window: q.key.startsWith('ip:') ? 'ip' : 'identity', subject: q.key.slice(3), state: states[i]! }));
        verdicts = states;
      } else verdicts = await deps.limiter.evaluate(queries);
    } catch (err) {
      if (!(err instanceof LimiterUnavailableError)) throw err;
      if (trace) trace.limiterUnavailable = true;
      return new AuthError('auth.backend_unavailable', undefined, { retryAfterSeconds: LIMITER_RETRY_AFTER, detail: 'rate limiter unavailable (fail closed)' });
    }
    for (let i = 0; i < queries.length; i++) {
      const verdict = verdicts[i];
      if (!verdict?.blocked) continue;
      const opts = { retryAfterSeconds: verdict.retryAfterSeconds };
      return queries[i]!.key.startsWith('ip:')
        ? new AuthError('auth.rate_limited.ip', `Too many authentication attempts from IP ${clientIp}`, opts)
        : new AuthError('auth.rate_limited.identity', 'Too many authentication attempts for this identity', opts);
    }
    return undefined;
  }

  async function decide(input: CheckInput, requestId: string, trace?: Trace): Promise<Decision> {
    let req: Requirement | undefined;
    const allow = (identity: Identity, cred: Credential | undefined, shadow?: AuthError): Decision => ({
      allow: true,
      requestId,
      input,
      requirement: req,
      identity,
      headers: identityHeaders(identity),
      headersToRemove: spoofedHeaders(input.headers, identity),
      queryParamsToRemove: cred?.queryParam ? [cred.queryParam] : NONE,
      shadow,
      outcome: { decision: 'allow', identity, matched: req?.matched, shadowCode: shadow?.code },
    });
    const mode = deps.mode();
    if (mode === 'disabled' || isCorsPreflight(input)) return allow(ANONYMOUS, undefined);

    req = applyContextExtensions(evaluatePolicy(deps.policy(), input.method, input.path), input.contextExtensions);
    const routeMode = req.auth ?? mode;

    let cred: Credential | undefined;
    let v: Verdict = {};
    try {
      cred = extractCredential(input);
    } catch (err) {
      if (!isAuthError(err)) throw err;
      v = { error: err };
      if (trace) trace.authError = err;
    }
    if (trace) trace.credential = cred && { via: cred.via, queryParam: cred.queryParam };

    if (routeMode === 'public') {
      // Valid credentials still yield identity headers; invalid ones are ignored, never counted.
      // Offline: an anonymous caller must never make a public route wait on a JWKS refetch.
      const who = cred ? await identify(cred.token, { offline: true }, trace) : {};
      if (trace && cred) Object.assign(trace, { kind: credentialKind(cred.token, who), authError: who.error, identity: who.identity });
      return allow(who.identity ?? ANONYMOUS, cred);
    }

    if (!v.error) {
      if (cred) v = await identify(cred.token, undefined, trace);
      else if (routeMode === 'optional') v = { identity: ANONYMOUS };
      else v = { error: new AuthError('auth.missing_token') };
    }
    if (trace && cred) Object.assign(trace, { kind: credentialKind(cred.token, v), authError: v.error, identity: v.identity });
    if (v.identity?.authenticated) {
      const denied = authorize(v.identity, req);
      if (denied) v = { error: denied, key: identityKey(v.identity), identity: v.identity };
      else v.key = identityKey(v.identity);
    }

    const limited = await rateLimit(input, v, trace);
    const error = limited ?? v.error;
    if (error && (req.enforce === false || deps.dryRun)) {
      // Shadow: decided and counted in full above, allowed here. A limiter's refusal (429, or 503 when
      // failing closed) passes no identity: the limiter is what stops credential guessing, and an
      // identity reaching the upstream would tell the guesser which guess was right.
      return allow(limited || !v.identity?.authenticated ? ANONYMOUS : v.identity, cred, error);
    }
    if (error) {
      return {
        allow: false,
        requestId,
        input,
        requirement: req,
        error,
        tokenPresented: cred !== undefined,
        outcome: { decision: 'deny', code: error.code, identity: v.identity, matched: req.matched },
      };
    }
    return allow(v.identity ?? ANONYMOUS, cred);
  }

  const errorFields = (err: unknown) => (err instanceof Error ? { type: err.name, message: err.message, stack: deps.sensitiveDebug ? err.stack : undefined } : String(err));

  /** Observers (metrics, audit, logs) run after the decision and can never change or fail it. */
  function observe(decision: Decision): void {
    const { outcome, input } = decision;
    try {
      deps.observe?.(outcome);
    } catch (err) {
      logger.error({ err: errorFields(err) }, 'check observer failed; decision unchanged');
    }
    if (!input) return;
    try {
      const code = outcome.code ?? outcome.shadowCode;
      if (code !== undefined) {
        const req = decision.requirement;
        decisions.info(
          {
            code,
            method: input.method,
            path: input.path,
            rule: outcome.matched,
            pattern: req?.pattern,
            workspace: code === 'auth.workspace_forbidden' ? req?.workspace : undefined,
            subject: outcome.identity?.subject,
            ip: clientIpOf(input),
            request_id: decision.requestId,
          },
          outcome.decision === 'deny' ? 'request denied' : 'would deny',
        );
      } else if (decisions.isLevelEnabled('debug')) {
        decisions.debug({ method: input.method, path: input.path, rule: outcome.matched, subject: outcome.identity?.subject, type: outcome.identity?.type, request_id: decision.requestId }, 'request allowed');
      }
    } catch {
      // A logger that throws must not turn a decision into an error either.
    }
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
   * Both entries' core. A request that cannot be read and an unexpected failure are denied even in shadow:
   * neither was decided in full (no rule was evaluated, or a phase broke), and a failure is never an allow.
   */
  async function run(parts: RequestParts, trace?: Trace): Promise<Decision> {
    let input: CheckInput | undefined;
    let requestId = '';
    try {
      requestId = decisionId(parts.headers);
      input = toCheckInput(parts);
      return await decide(input, requestId, trace);
    } catch (err) {
      requestId ||= 'unknown';
      if (isAuthError(err)) {
        // toCheckInput refusing a path it cannot read unambiguously: a deny with its code, not a 503.
        try {
          if (!trace) decisions.info({ code: err.code, detail: err.detail, request_id: requestId }, 'request denied');
        } catch {
          // Logging never changes a decision.
        }
        return denied(err, requestId);
      }
      // A bug or an unexpected backend failure: fail closed with a stable, retryable code.
      logger.error({ err: errorFields(err), path: input?.path, request_id: requestId, explain: trace ? true : undefined }, 'check failed; denying');
      return denied(new AuthError('auth.backend_unavailable', undefined, { retryAfterSeconds: LIMITER_RETRY_AFTER }), requestId);
    }
  }

  const check = async function check(parts: RequestParts): Promise<Decision> {
    const decision = await run(parts);
    observe(decision);
    return decision;
  } as CheckPipeline;

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

const NONE: readonly string[] = Object.freeze([]);
