import type { Identity } from '../authn/types';
import type { Requirement } from '../authz/policy';
import type { AuthError, DenyCode } from '../errors/deny';
import type { CheckInput } from './request';

/** What observers (metrics, audit, usage) see of a decision. */
export interface Outcome {
  readonly decision: 'allow' | 'deny';
  readonly code?: DenyCode | undefined;
  readonly identity?: Identity | undefined;
  readonly matched?: string | undefined;
  /** Shadow mode: the code this request would have been denied with (it was allowed). */
  readonly shadowCode?: DenyCode | undefined;
}

/**
 * The request as a front door hands it to the pipeline, whatever the wire: Envoy's CheckRequest
 * (grpc/request.ts), the HTTP authorization interface, the admin API. Nothing here is trusted.
 */
export interface RequestParts {
  readonly method?: string | undefined;
  /** The path as sent, possibly with `?query` (and `#fragment`, ignored). */
  readonly path?: string | undefined;
  /** The query string when the wire carries it apart from the path (Envoy's `http.query`). */
  readonly query?: string | undefined;
  /** Lower-cased names; a repeated header joined with commas. */
  readonly headers: ReadonlyMap<string, string>;
  /** The client address the front door attributes the request to. */
  readonly sourceAddress?: string | undefined;
  /** Route hints fixed by the proxy's configuration (Envoy context_extensions, HTTP interface query). */
  readonly contextExtensions?: Readonly<Record<string, string>> | undefined;
}

export type Header = readonly [name: string, value: string];

interface DecisionBase {
  /** The decision id: the request's `x-request-id` when usable, else generated. */
  readonly requestId: string;
  /** The normalised request; undefined when it could not be read (`auth.invalid_request`, a defect). */
  readonly input: CheckInput | undefined;
  /** What the route required (policy + context extensions); undefined when never evaluated. */
  readonly requirement: Requirement | undefined;
  readonly outcome: Outcome;
}

/** An allow, in wire-neutral terms: every front door maps it to its own answer. */
export interface AllowDecision extends DecisionBase {
  readonly allow: true;
  readonly identity: Identity;
  /** Headers the upstream receives, overwriting any client copy (identity headers first). */
  readonly headers: readonly Header[];
  /** Client headers that must not reach the upstream (spoofed `x-orcheo-*` ones). */
  readonly headersToRemove: readonly string[];
  /** Query parameters that carried the credential. */
  readonly queryParamsToRemove: readonly string[];
  /** Shadow mode: the denial this request would have had. */
  readonly shadow?: AuthError | undefined;
}

export interface DenyDecision extends DecisionBase {
  readonly allow: false;
  readonly error: AuthError;
  /** Whether a credential was presented (changes `www-authenticate`). */
  readonly tokenPresented: boolean;
}

export type Decision = AllowDecision | DenyDecision;

/** The pipeline as every front door calls it. Always resolves; never rejects. */
export type CheckFn = (req: RequestParts) => Promise<Decision>;

export type MaybePromise<T> = T | Promise<T>;

/** The same, answered synchronously when every phase is (the gRPC hot path): never throws, never rejects. */
export type DecideFn = (req: RequestParts) => MaybePromise<Decision>;
