import type { Config } from './types';
import { SERVICE_VARIABLES } from './variables';
import { PLACEHOLDER_MARKER, SHIPPED_SECRET_VALUES } from './shipped';
import type { Env } from './parse';

/** Levenshtein distance; small inputs only (variable names). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

export function closestVariable(name: string): string {
  let best: string = SERVICE_VARIABLES[0];
  for (const v of SERVICE_VARIABLES) if (editDistance(name, v) < editDistance(name, best)) best = v;
  return best;
}

const MIN_HS_SECRET_BYTES = 32;

function credentialWarning(variable: string, value: string): string | undefined {
  if (SHIPPED_SECRET_VALUES.includes(value)) return `${variable} equals a value shipped publicly in deploy/: anyone can use it. Generate one with \`openssl rand -base64 32\``;
  if (value.includes(PLACEHOLDER_MARKER)) return `${variable} still contains the placeholder ${PLACEHOLDER_MARKER}: replace it with \`openssl rand -base64 32\``;
  return undefined;
}

/**
 * Mistakes that do not stop the service but usually mean it is not configured as intended. Printed by
 * `check-config` (exit 0) and logged at `serve` start. Never includes a secret's value.
 */
export function configWarnings(cfg: Config, env: Env): string[] {
  const out: string[] = [];
  const known = new Set<string>(SERVICE_VARIABLES);
  for (const name of Object.keys(env).sort()) {
    if (name.startsWith('ORCHEO_AUTH_') && !known.has(name)) out.push(`${name} is not a known variable and is ignored (did you mean ${closestVariable(name)}?)`);
  }
  const jwtSecret = cfg.jwt.secret;
  if (jwtSecret !== undefined) {
    const bytes = Buffer.byteLength(jwtSecret, 'utf8');
    if (bytes < MIN_HS_SECRET_BYTES) out.push(`ORCHEO_AUTH_JWT_SECRET is ${bytes} bytes; HS256 secrets should be at least ${MIN_HS_SECRET_BYTES} bytes`);
    const w = credentialWarning('ORCHEO_AUTH_JWT_SECRET', jwtSecret);
    if (w) out.push(w);
  }
  if (cfg.bootstrap) {
    const w = credentialWarning('ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN', cfg.bootstrap.token);
    if (w) out.push(w);
  }
  return out;
}

/** One line saying which rate limits are on; they are off unless set. */
export function rateLimitSummary(cfg: Config): string {
  const r = cfg.rateLimit;
  const parts: string[] = [];
  if (r.ip > 0) parts.push(`${r.ip} failures per IP`);
  if (r.identity > 0) parts.push(`${r.identity} failures per identity`);
  if (parts.length === 0) return 'rate limits off (set ORCHEO_AUTH_RATE_LIMIT_IP / ORCHEO_AUTH_RATE_LIMIT_IDENTITY to enable)';
  return `rate limits on: ${parts.join(', ')} per ${r.intervalSeconds} s (${cfg.redisUrl ? 'Redis' : 'in memory, per process'})`;
}
