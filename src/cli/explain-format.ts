import type { Explanation } from '../pipeline/explain';

/** Terminal-safe: a value from the server (a path, a subject) never carries escape sequences to the terminal. */
const clean = (s: string): string => s.replace(/[\x00-\x1f\x7f-\x9f]/g, '?');
const list = (xs: readonly string[], none = '-'): string => (xs.length ? xs.map(clean).join(', ') : none);

const WHERE: Record<string, string> = { header: 'header', websocket_protocol: 'WebSocket subprotocol', query: 'query parameter' };
const KIND: Record<string, string> = { bootstrap: 'bootstrap token', service_token: 'service token', jwt: 'JWT', unknown: 'unknown kind' };

function credentialLine(e: Explanation): string {
  const c = e.credential;
  if (!c.found) return c.code ? `malformed (${c.code})` : 'none presented';
  const where = `${WHERE[c.where ?? ''] ?? c.where} ${clean(c.name ?? '')}`.trim();
  const verdict = c.accepted ? 'accepted' : `refused (${c.code})`;
  return `${where}, ${KIND[c.kind ?? 'unknown']}: ${verdict}`;
}

function identityLine(e: Explanation): string {
  const i = e.identity;
  if (!i) return 'anonymous';
  return `${clean(i.subject)} (${i.type}, ${i.source}); scopes ${list(i.scopes)}; workspaces ${list(i.workspaces)}; expires ${i.expires_at ?? 'never'}`;
}

function ruleLine(e: Explanation): string {
  const r = e.rule;
  if (!r) return '-';
  const what = r.position === null ? 'default (no rule matched)' : `rule ${r.position} ${clean(r.pattern ?? '')}`;
  return `${what}${r.context_extensions ? ' + context extensions' : ''} (policy ${clean(r.policy)})`;
}

function requirementLine(e: Explanation): string {
  const q = e.requirement;
  if (!q) return '-';
  return `auth ${q.auth}; scopes ${list(q.scopes)}; workspace ${q.workspace === null ? '-' : clean(q.workspace)}; ${q.enforce ? 'enforced' : 'shadow (enforce: false)'}`;
}

function limitLines(e: Explanation): string[] {
  const l = e.rate_limits;
  if (!l.enabled) return ['off'];
  if (!l.available) return ['rate limiter unavailable (failing closed)'];
  if (l.windows.length === 0) return ['no window applies'];
  return l.windows.map((w) => {
    const who = w.window === 'ip' ? `IP ${clean(w.subject)}` : `identity ${clean(w.subject)}`;
    return `${who}: ${w.count}/${w.limit} failures${w.blocked ? `, full until ${w.blocked_until} (retry after ${w.retry_after_seconds} s)` : ''}`;
  });
}

function decisionLine(e: Explanation): string {
  const d = e.decision;
  if (d.shadow) return `ALLOW (shadow) 200; would deny ${d.code}: ${clean(d.message ?? '')}`;
  if (d.allow) return 'ALLOW 200';
  return `DENY ${d.status} ${d.code}: ${clean(d.message ?? '')}`;
}

/** `explain`'s human output: one labelled line per phase, in the order the pipeline runs them. */
export function formatExplanation(e: Explanation): string {
  const rows: [string, string[]][] = [
    ['Request', [`${clean(e.request.method ?? '?')} ${clean(e.request.path ?? '?')} from ${clean(e.request.client_ip ?? '?')}`]],
    ['Request id', [clean(e.request_id)]],
    ['Mode', [`${e.mode}${e.dry_run ? ' (dry run: every route shadow)' : ''}`]],
  ];
  if (e.note) rows.push(['Note', [e.note]]);
  rows.push(
    ['Credential', [credentialLine(e)]],
    ['Identity', [identityLine(e)]],
    ['Rule', [ruleLine(e)]],
    ['Requires', [requirementLine(e)]],
    ['Rate limits', limitLines(e)],
    ['Decision', [decisionLine(e)]],
  );
  if (e.would_change.length) rows.push(['To change', e.would_change.map(clean)]);
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, vs]) => vs.map((v, i) => `${(i === 0 ? k : '').padEnd(width)}${v}`).join('\n')).join('\n') + '\n';
}
