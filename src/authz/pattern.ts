/**
 * Path patterns of the route policy: `*` matches one segment, `**` zero or more segments, `{name}`
 * one segment captured as `name`; anything else is literal. Compiled once to a RegExp.
 */
export interface PathPattern {
  readonly source: string;
  readonly params: readonly string[];
  match(path: string): Record<string, string> | undefined;
}

const PARAM = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

export class PatternError extends Error {}

const escape = (s: string): string => s.replace(/[.+?^${}()|[\]\\*]/g, '\\$&');

export function compilePattern(source: string): PathPattern {
  if (!source.startsWith('/')) throw new PatternError(`must start with "/" (got ${JSON.stringify(source)})`);
  const params: string[] = [];
  let re = '^';
  const segments = source.split('/').slice(1);
  segments.forEach((seg, i) => {
    if (seg === '**') {
      // Zero or more segments: `/a/**` matches `/a`, `/a/`, `/a/b/c`.
      re += i === segments.length - 1 ? '(?:/.*)?' : '(?:/[^/]*)*';
      return;
    }
    re += '/';
    if (seg === '*') re += '[^/]+';
    else {
      const m = PARAM.exec(seg);
      if (m) {
        if (params.includes(m[1]!)) throw new PatternError(`parameter {${m[1]}} appears twice in ${source}`);
        params.push(m[1]!);
        re += '([^/]+)';
      } else if (/[{}*]/.test(seg)) {
        throw new PatternError(`segment ${JSON.stringify(seg)} mixes literal text with * or {…}; use a whole segment`);
      } else re += escape(seg);
    }
  });
  // A trailing slash on the request is tolerated: `/api/workflows/` is `/api/workflows`.
  const rx = new RegExp(`${re}/?$`);
  return Object.freeze({
    source,
    params: Object.freeze(params),
    match(path: string): Record<string, string> | undefined {
      const m = rx.exec(path);
      if (!m) return undefined;
      const out: Record<string, string> = {};
      params.forEach((p, i) => {
        out[p] = m[i + 1]!;
      });
      return out;
    },
  });
}

/** Percent-decodes; a malformed or non-UTF-8 escape decodes byte-wise instead of failing. */
function decodePath(p: string): string {
  if (!p.includes('%')) return p;
  try {
    return decodeURIComponent(p);
  } catch {
    return p.replace(/%([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
  }
}

/**
 * The path the policy sees: query and fragment cut, percent-escapes decoded, `\\` read as `/`,
 * duplicate slashes merged, `.` and `..` resolved. An upstream that decodes `%2e%2e`, `%2F` or
 * `%77orkflows` must not reach a route the policy would have guarded, so rules match what the most
 * permissive upstream could see. (Envoy's `normalize_path`, `merge_slashes` and
 * `path_with_escaped_slashes_action` are still worth enabling.)
 */
export function normalizePath(raw: string): string {
  let p = raw;
  const cut = p.search(/[?#]/);
  if (cut >= 0) p = p.slice(0, cut);
  p = decodePath(p).replace(/\\/g, '/');
  if (!p.startsWith('/')) p = `/${p}`;
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return `/${out.join('/')}${p.length > 1 && p.endsWith('/') && out.length > 0 ? '/' : ''}`;
}
