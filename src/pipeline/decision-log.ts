import type { Logger } from 'pino';
import type { DenyCode } from '../errors/deny';
import type { Decision } from './decision';
import type { CheckInput } from './request';

const WINDOW_MS = 1000;

export interface DecisionLog {
  /** The line about one decided request: every `would deny`, `request denied` sampled per code, `request allowed` at debug. */
  decided(decision: Decision, clientIpOf: (input: CheckInput) => string): void;
  /** A request refused before it was decided (a path the policy cannot read). */
  unreadable(code: DenyCode, detail: string | undefined, requestId: string): void;
  /** Writes the counts of lines not written yet. */
  flush(): void;
}

interface Window {
  start: number;
  logged: number;
  suppressed: number;
}

/**
 * Decision lines carry only code, method, normalised path, rule and its pattern, workspace (from
 * the path), subject and client IP — never a header or token — so they skip pino's redaction pass,
 * which cost ~16 µs of a ~20 µs line.
 *
 * A flood of denials (a scanner, a client with a dead token) must not turn the log into the
 * bottleneck: past `ratePerSecond` lines of one code within a second, further denials of that code
 * are only counted, and one `request denied lines suppressed` line per code gives the count when the
 * second is over. Every denial is still in `orcheo_authz_checks_total` and the audit trail. Shadow
 * (`would deny`) lines are never sampled: an operator trying a rule out reads each of them.
 */
export function createDecisionLog(logger: Logger, ratePerSecond: number, now: () => number = Date.now): DecisionLog {
  const lines = logger.child({}, { redact: { paths: [] } });
  const windows = new Map<DenyCode, Window>();
  let timer: NodeJS.Timeout | undefined;

  const flush = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    for (const [code, w] of windows) {
      if (w.suppressed === 0) continue;
      lines.info({ code, suppressed: w.suppressed }, 'request denied lines suppressed');
      w.suppressed = 0;
    }
  };

  /** Whether this denial gets its own line. */
  const sample = (code: DenyCode): boolean => {
    if (ratePerSecond === Infinity) return true;
    const t = now();
    let w = windows.get(code);
    if (!w) windows.set(code, (w = { start: t, logged: 0, suppressed: 0 }));
    if (t - w.start >= WINDOW_MS || t < w.start) {
      if (w.suppressed > 0) flush();
      w.start = t;
      w.logged = 0;
    }
    if (w.logged < ratePerSecond) {
      w.logged++;
      return true;
    }
    w.suppressed++;
    if (!timer) {
      timer = setTimeout(flush, WINDOW_MS);
      timer.unref();
    }
    return false;
  };

  return {
    decided(decision, clientIpOf) {
      const { outcome, input } = decision;
      if (!input) return;
      const code = outcome.code ?? outcome.shadowCode;
      if (code !== undefined) {
        if (outcome.decision === 'deny' && !sample(code)) return;
        const req = decision.requirement;
        lines.info(
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
      } else if (lines.isLevelEnabled('debug')) {
        lines.debug({ method: input.method, path: input.path, rule: outcome.matched, subject: outcome.identity?.subject, type: outcome.identity?.type, request_id: decision.requestId }, 'request allowed');
      }
    },
    unreadable(code, detail, requestId) {
      if (sample(code)) lines.info({ code, detail, request_id: requestId }, 'request denied');
    },
    flush,
  };
}
