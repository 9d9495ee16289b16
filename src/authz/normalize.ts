/**
 * A path the policy cannot read unambiguously. The pipeline answers it `400 auth.invalid_request`:
 * guessing would let some upstream see a route the policy did not.
 */
export class InvalidPathError extends Error {}

/** Percent-decodes once; a malformed or non-UTF-8 escape decodes byte-wise instead of failing. */
function decodePath(p: string): string {
  if (!p.includes('%')) return p;
  try {
    return decodeURIComponent(p);
  } catch {
    return p.replace(/%([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
  }
}

// C0, DEL and C1 controls (Unicode Cc), NUL included.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const ESCAPE = /%[0-9a-fA-F]{2}/;
/** What the full reading below would change: an escape, `\\`, `;`, a control, `//`, a dot segment, no leading `/`. */
const NEEDS_WORK = /[%\\;\u0000-\u001f\u007f-\u009f]|\/\/|\/\.|^[^/]/;

/**
 * The path the policy sees: query and fragment cut, percent-escapes decoded once, `\\` read as `/`,
 * `;parameters` cut from each segment, duplicate slashes merged, `.` and `..` resolved. An upstream
 * that decodes `%2e%2e`, `%2F` or `%77orkflows`, or drops `;jsessionid=…`, must not reach a route the
 * policy would have guarded, so rules match what the most permissive upstream could see. Where
 * upstreams disagree on the reading, the path is refused (InvalidPathError) rather than guessed:
 * an escape left after one decoding (`%252e` — one more decoding upstream would change the route),
 * a control character, or a dot segment with parameters (`..;x` is `..` to some servers and a
 * name to others). (Envoy's `normalize_path`, `merge_slashes` and
 * `path_with_escaped_slashes_action` are still worth enabling.)
 */
export function normalizePath(raw: string): string {
  let p = raw;
  const cut = p.search(/[?#]/);
  if (cut >= 0) p = p.slice(0, cut);
  // Nothing to decode, cut, merge or resolve: the path reads the same to every upstream. (The
  // fuzz test holds this shortcut to the contract's reading through an independent oracle.)
  if (p !== '' && !NEEDS_WORK.test(p)) return p;
  p = decodePath(p);
  if (CONTROL.test(p)) throw new InvalidPathError('the path contains a control character');
  if (ESCAPE.test(p)) throw new InvalidPathError('the path still holds a percent-escape after decoding');
  p = p.replace(/\\/g, '/');
  if (!p.startsWith('/')) p = `/${p}`;
  const out: string[] = [];
  for (const raw of p.split('/')) {
    const semi = raw.indexOf(';');
    const seg = semi >= 0 ? raw.slice(0, semi) : raw;
    if (semi >= 0 && (seg === '.' || seg === '..')) throw new InvalidPathError('a dot segment carries ;parameters');
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return `/${out.join('/')}${p.length > 1 && p.endsWith('/') && out.length > 0 ? '/' : ''}`;
}
