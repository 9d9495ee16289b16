/**
 * A URL as it may appear in logs and errors: the password replaced by `***` (the user kept, to
 * tell accounts apart), and with `dropQuery` the query and fragment removed (some identity
 * providers put keys there). Works on the raw string, since Redis cluster URLs (several hosts)
 * are not WHATWG URLs; greedy up to the last `@`, so an unencoded `@` in a password over-redacts
 * rather than leaking the rest of it. A lone userinfo (`redis://s3cret@host`) counts as a password.
 */
export function redactUrl(url: string, opts: { readonly dropQuery?: boolean } = {}): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0];
  if (!scheme) return '<invalid url>';
  let rest = url.slice(scheme.length);
  const at = rest.lastIndexOf('@');
  let user = '';
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    const colon = userinfo.indexOf(':');
    user = `${colon >= 0 ? userinfo.slice(0, colon) : ''}:***@`;
    rest = rest.slice(at + 1);
  }
  if (opts.dropQuery) rest = rest.replace(/[?#].*$/s, '');
  return `${scheme}${user}${rest}`;
}
