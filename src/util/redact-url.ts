/**
 * A URL as it may appear in logs and errors. By default the password is replaced by `***` and the
 * user kept (to tell accounts apart). `strict`, for URLs of third parties (identity providers),
 * drops the whole userinfo, the query and the fragment (some providers put keys there).
 * Works on the raw string, since Redis cluster URLs (several hosts) are not WHATWG URLs; greedy up
 * to the last `@`, so an unencoded `@` in a password over-redacts rather than leaking the rest of
 * it. A lone userinfo (`redis://s3cret@host`) counts as a password.
 */
export function redactUrl(url: string, opts: { readonly strict?: boolean } = {}): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0];
  if (!scheme) return '<invalid url>';
  let rest = url.slice(scheme.length);
  const at = rest.lastIndexOf('@');
  let userinfo = '';
  if (at >= 0) {
    const colon = rest.slice(0, at).indexOf(':');
    userinfo = opts.strict ? '' : `${colon >= 0 ? rest.slice(0, colon) : ''}:***@`;
    rest = rest.slice(at + 1);
  }
  if (opts.strict) rest = rest.replace(/[?#].*$/s, '');
  return `${scheme}${userinfo}${rest}`;
}
