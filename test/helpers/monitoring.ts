import * as fs from 'node:fs';

/** Skip reason when `bin` is absent locally (undefined when present); a failure under CI_REQUIRE_BACKENDS. */
export function missingBinary(bin: string, pkg = 'prometheus'): string | undefined {
  if (fs.existsSync(bin)) return undefined;
  if (process.env.CI_REQUIRE_BACKENDS) throw new Error(`CI_REQUIRE_BACKENDS is set but ${bin} is missing (Debian package ${pkg})`);
  return `${bin} not installed (Debian package ${pkg})`;
}
