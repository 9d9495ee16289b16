/**
 * Path patterns of the route policy: `*` matches one segment, `**` zero or more segments, `{name}`
 * one segment captured as `name`; anything else is literal. Matching works on segments, never on a
 * regex: an interior `**` compiled to a regex backtracked (a 48 KB path cost 250 ms per rule).
 */
export interface PathPattern {
  readonly source: string;
  readonly params: readonly string[];
  match(path: string): Record<string, string> | undefined;
  /** The same on a path already split by `pathSegments`, so a policy splits each request once. */
  matchSegments(segments: readonly string[]): Record<string, string> | undefined;
}

const PARAM = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

export class PatternError extends Error {}

/** `**` is ANY; `*` and `{name}` match exactly one non-empty segment; a string is a literal. */
const ANY = 0;
const ONE = 1;
type Token = typeof ANY | typeof ONE | { readonly param: string } | string;

function tokenize(source: string): Token[] {
  const params: string[] = [];
  const segments = source.split('/').slice(1);
  // `/a/` is `/a`: requests get the same trailing-slash tolerance.
  if (segments.length > 0 && segments[segments.length - 1] === '') segments.pop();
  const tokens: Token[] = [];
  for (const seg of segments) {
    if (seg === '**') {
      if (tokens[tokens.length - 1] !== ANY) tokens.push(ANY); // `**/**` is one `**`
      continue;
    }
    if (seg === '*') {
      tokens.push(ONE);
      continue;
    }
    const m = PARAM.exec(seg);
    if (m) {
      if (params.includes(m[1]!)) throw new PatternError(`parameter {${m[1]}} appears twice in ${source}`);
      params.push(m[1]!);
      tokens.push({ param: m[1]! });
    } else if (/[{}*]/.test(seg)) {
      throw new PatternError(`segment ${JSON.stringify(seg)} mixes literal text with * or {…}; use a whole segment`);
    } else tokens.push(seg);
  }
  return tokens;
}

/** Splits a path into segments, one trailing slash tolerated (`/api/workflows/` is `/api/workflows`). */
export function pathSegments(path: string): string[] | undefined {
  if (!path.startsWith('/')) return undefined;
  const body = path.length > 1 && path.endsWith('/') ? path.slice(1, -1) : path.slice(1);
  return body === '' ? [] : body.split('/');
}

function fits(t: Token, seg: string): boolean {
  if (typeof t === 'string') return t === seg;
  return seg !== '' && t !== ANY;
}

/**
 * Greedy wildcard matching with `**` as the only star: each stretch between two `**` is placed at
 * its leftmost fit, and a miss only ever retries from the latest `**`. That bounds the work by
 * segments × pattern tokens, so time is linear in the path's length for any pattern. (Leftmost
 * placement is also what decides captures: each `**` takes as few segments as it can, left to right.)
 */
function matchTokens(tokens: readonly Token[], segs: readonly string[], params: readonly string[]): Record<string, string> | undefined {
  // Most patterns capture nothing: no object per attempt for them.
  const caps: Record<string, string> | undefined = params.length > 0 ? {} : undefined;
  let p = 0;
  let s = 0;
  let starP = -1;
  let starS = 0;
  while (s < segs.length) {
    const t = tokens[p];
    if (p < tokens.length && t === ANY) {
      starP = p++;
      starS = s;
    } else if (p < tokens.length && fits(t!, segs[s]!)) {
      if (caps && typeof t === 'object') caps[t.param] = segs[s]!;
      p++;
      s++;
    } else if (starP >= 0) {
      p = starP + 1;
      s = ++starS;
    } else return undefined;
  }
  while (p < tokens.length && tokens[p] === ANY) p++;
  if (p !== tokens.length) return undefined;
  // Captures of a failed placement are overwritten by the final one: every token after the last
  // `**` is matched again from scratch, and those before it never move.
  if (!caps) return NO_CAPTURES;
  const out: Record<string, string> = {};
  for (const name of params) out[name] = caps[name]!;
  return out;
}

const NO_CAPTURES: Record<string, string> = Object.freeze({}) as Record<string, string>;

export function compilePattern(source: string): PathPattern {
  if (!source.startsWith('/')) throw new PatternError(`must start with "/" (got ${JSON.stringify(source)})`);
  const tokens = Object.freeze(tokenize(source));
  const params = Object.freeze(tokens.flatMap((t) => (typeof t === 'object' ? [t.param] : [])));
  const matchSegments = (segs: readonly string[]) => matchTokens(tokens, segs, params);
  return Object.freeze({
    source,
    params,
    matchSegments,
    match(path: string): Record<string, string> | undefined {
      const segs = pathSegments(path);
      return segs ? matchSegments(segs) : undefined;
    },
  });
}
