/** Human output of the token commands (the guide's layout). `--json` bypasses all of this. */
import type { TokenView } from '../admin/views';

/** A token as the admin API answers it, plus what create, rotate and revoke add. */
export interface TokenJson extends TokenView {
  readonly secret?: string;
  readonly previous?: TokenJson;
  readonly also_revoked?: readonly string[];
}

export interface AuditJson {
  id: number;
  occurred_at: string;
  event: string;
  token_id: string | null;
  actor: string | null;
  client_ip: string | null;
  user_agent: string | null;
  reason: string | null;
  count: number;
  details: Record<string, unknown> | null;
}

export const SECRET_WARNING = '⚠ Store this secret securely. It will not be shown again.';

/** Terminal-safe text: control characters (escape sequences) from the server are neutralised. */
export function clean(s: unknown): string {
  return String(s ?? '').replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

/** `2025-12-03 15:30:00 UTC`; `never` for null. */
export function when(iso: string | null | undefined, never = 'never'): string {
  if (!iso) return never;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return clean(iso);
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

const listOf = (xs: readonly string[] | undefined, none = 'none'): string => (xs && xs.length ? xs.map(clean).join(', ') : none);

function secretBlock(t: TokenJson, title: string): string[] {
  return [title, '', `ID: ${clean(t.id)}`, `Secret: ${clean(t.secret)}`, '', SECRET_WARNING, ''];
}

/** A token without workspaces is denied on every workspace route; say so wherever they are shown. */
export const NO_WORKSPACES = 'none (denied on workspace routes)';

function tokenSummary(t: TokenJson): string[] {
  return [`Scopes: ${listOf(t.scopes)}`, `Workspaces: ${listOf(t.workspaces, NO_WORKSPACES)}`, `Expires: ${when(t.expires_at)}`];
}

export function formatCreated(t: TokenJson): string {
  return [...secretBlock(t, 'Service token created successfully!'), ...tokenSummary(t)].join('\n') + '\n';
}

export function formatRotated(t: TokenJson): string {
  const lines = [...secretBlock(t, 'Service token rotated successfully!'), ...tokenSummary(t)];
  if (t.previous) {
    const end = t.previous.expires_at ? Date.parse(t.previous.expires_at) : NaN;
    lines.push('', end <= Date.now() ? `Previous secret (now ${clean(t.previous.id)}): no longer valid` : `Previous secret (now ${clean(t.previous.id)}): valid until ${when(t.previous.expires_at)}, then it stops working`);
  }
  return lines.join('\n') + '\n';
}

export function formatToken(t: TokenJson): string {
  const rows: Array<[string, string]> = [
    ['ID', clean(t.id)],
    ['Status', clean(t.status)],
    ['Scopes', listOf(t.scopes)],
    ['Workspaces', listOf(t.workspaces, NO_WORKSPACES)],
    ['Issued', when(t.issued_at)],
    ['Expires', when(t.expires_at)],
  ];
  if (t.revoked_at) rows.push(['Revoked', when(t.revoked_at)]);
  if (t.revocation_reason) rows.push(['Reason', clean(t.revocation_reason)]);
  if (t.rotated_to) rows.push(['Rotated to', clean(t.rotated_to)]);
  if (t.rotated_from) rows.push(['Rotated from', clean(t.rotated_from)]);
  rows.push(['Last used', when(t.last_used_at, 'never')], ['Uses', String(t.use_count ?? 0)]);
  if (t.created_by) rows.push(['Created by', clean(t.created_by)]);
  const w = Math.max(...rows.map(([k]) => k.length)) + 1;
  return rows.map(([k, v]) => `${`${k}:`.padEnd(w)} ${v}`).join('\n') + '\n';
}

export function formatRevoked(t: TokenJson): string {
  const lines = [`Service token ${clean(t.id)} revoked.`];
  if (t.revocation_reason) lines.push(`Reason: ${clean(t.revocation_reason)}`);
  if (t.also_revoked?.length) lines.push(`Also revoked its previous secret${t.also_revoked.length > 1 ? 's' : ''} still in overlap: ${t.also_revoked.map(clean).join(', ')}`);
  return lines.join('\n') + '\n';
}

/** A plain-text table: header, a rule, rows; columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}

/** Minutes are enough for a list, except for an expiry within the hour, where the seconds matter (NaN now: always minutes). */
function short(iso: string | null, now: number, never = 'never'): string {
  if (!iso) return never;
  return Math.abs(Date.parse(iso) - now) < 3_600_000 ? when(iso) : when(iso).replace(/:\d\d UTC$/, ' UTC');
}

/** A list cell of at most `max` characters: the items that fit, then `+N` for the rest (`show` has them all). */
function fitList(xs: readonly string[] | undefined, none: string, max: number): string {
  if (!xs || xs.length === 0) return none;
  const full = listOf(xs);
  if (full.length <= max) return full;
  const kept: string[] = [];
  for (const x of xs) {
    const next = [...kept, clean(x)].join(', ');
    if (next.length + ` +${xs.length - kept.length - 1}`.length > max) break;
    kept.push(clean(x));
  }
  return `${kept.join(', ')} +${xs.length - kept.length}`;
}

/** Terminals are 100 columns wide here: past that, the Issued column goes, then long lists are shortened. */
export const LIST_WIDTH = 100;

export function formatList(tokens: TokenJson[], now = Date.now()): string {
  if (tokens.length === 0) return 'No service tokens found.\n';
  const widest = (text: string): number => Math.max(...text.split('\n').map((l) => l.length));
  const build = (withIssued: boolean, listMax: number): string =>
    table(
      ['ID', 'Scopes', 'Workspaces', ...(withIssued ? ['Issued'] : []), 'Expires', 'Status'],
      tokens.map((t) => [
        clean(t.id),
        fitList(t.scopes, '-', listMax),
        fitList(t.workspaces, 'none', listMax),
        ...(withIssued ? [short(t.issued_at, Number.NaN)] : []),
        short(t.expires_at, now),
        clean(t.status),
      ]),
    );
  let out = build(true, Number.POSITIVE_INFINITY);
  if (widest(out) > LIST_WIDTH) out = build(false, Number.POSITIVE_INFINITY);
  if (widest(out) > LIST_WIDTH) out = build(false, 24);
  const bare = tokens.some((t) => !t.workspaces?.length);
  return bare ? `${out}\nWorkspaces "none": denied on workspace routes.\n` : out;
}

export function formatAudit(events: AuditJson[]): string {
  if (events.length === 0) return 'No audit events found.\n';
  return table(
    ['Time', 'Event', 'Token', 'Actor', 'Count', 'Client IP', 'Reason'],
    events.map((e) => [when(e.occurred_at), clean(e.event), clean(e.token_id ?? '-'), clean(e.actor ?? '-'), String(e.count), clean(e.client_ip ?? '-'), clean(e.reason ?? '')]),
  );
}
