import { readFileSync } from 'node:fs';
import { join } from 'node:path';

let cached: string | undefined;

/**
 * The package version, for `--version` and `orcheo_authz_build_info`. Read from package.json two
 * levels above dist/src (present in the installed package and the image); 'unknown' if it is not.
 */
export function packageVersion(): string {
  if (cached === undefined) {
    try {
      const v = (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version?: unknown }).version;
      cached = typeof v === 'string' && /^[\w.+-]{1,40}$/.test(v) ? v : 'unknown';
    } catch {
      cached = 'unknown';
    }
  }
  return cached;
}
