import { Command, InvalidArgumentError } from 'commander';
import { CommandError } from './errors';

/** `--publish-ahead` in seconds (fractions allowed: tests and impatient operators). */
function seconds(v: string): number {
  const t = v.trim();
  const n = /^\d{1,9}(\.\d{1,3})?$/.test(t) ? Number(t) : NaN;
  if (!Number.isFinite(n)) throw new InvalidArgumentError('--publish-ahead must be a number of seconds (e.g. 60).');
  if (n > 7 * 86400) throw new InvalidArgumentError('--publish-ahead must be at most 604800 (7 days).');
  return n;
}

function alg(v: string): 'ES256' | 'EdDSA' {
  const a = v.trim();
  if (a === 'ES256' || a === 'EdDSA') return a;
  throw new InvalidArgumentError(`--alg must be ES256 or EdDSA, got ${JSON.stringify(a.slice(0, 20))}.`);
}

interface RotateOpts {
  readonly publishAhead: number;
  readonly alg: 'ES256' | 'EdDSA';
  readonly json?: boolean;
}

/**
 * `orcheo-authz assertion-key rotate`: talks to the token store directly, like `migrate` (whoever
 * can reach the database already holds the keys; no admin token is involved). Every running
 * replica follows through NOTIFY, or its poll, within a second.
 */
async function rotate(opts: RotateOpts): Promise<void> {
  const { loadConfig } = await import('../config/load');
  const { createLogger } = await import('../log');
  const { describeStore, openDb } = await import('../store/open');
  const { migrate } = await import('../store/migrations');
  const { rotateKey } = await import('../assertion/key-store');
  const { JWKS_MAX_AGE_S } = await import('../assertion/routes');
  const cfg = loadConfig();
  if (cfg.assertion.keyFile) throw new CommandError('cli.refused', `ORCHEO_AUTH_ASSERTION_KEY_FILE is set (${cfg.assertion.keyFile}): the service signs with that file's key; rotate by replacing the file`);
  const db = await openDb(cfg, createLogger('warn'));
  try {
    let r;
    try {
      if (cfg.autoMigrate) await migrate(db);
      r = await rotateKey(db, { publishAheadMs: Math.round(opts.publishAhead * 1000), ttlMs: cfg.assertion.ttlSeconds * 1000, alg: opts.alg });
    } catch (err) {
      const { StoreUnavailableError } = await import('../store/db');
      throw new CommandError(err instanceof StoreUnavailableError ? 'store.unavailable' : 'internal', `cannot rotate the assertion key in the token store, ${describeStore(cfg)}: ${(err as Error).message}`);
    }
    const out = { kid: r.kid, alg: r.alg, signs_from: new Date(r.signsFrom).toISOString(), retiring: r.retiring.map((k) => ({ kid: k.kid, retire_after: new Date(k.retireAfter).toISOString() })) };
    if (opts.json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    else {
      process.stdout.write(`New assertion key ${out.kid} (${out.alg}) published now; signs from ${out.signs_from}\n`);
      for (const k of out.retiring) process.stdout.write(`Key ${k.kid} stays published until ${k.retire_after}\n`);
    }
    if (opts.publishAhead < JWKS_MAX_AGE_S) {
      process.stderr.write(`warning: --publish-ahead ${opts.publishAhead} is shorter than the JWKS cache lifetime (${JWKS_MAX_AGE_S} s): an upstream may meet the new key before it refetches the key set\n`);
    }
  } finally {
    await db.close();
  }
}

export function registerAssertionKeyCommands(program: Command): void {
  const group = program.command('assertion-key').description('manage the identity assertion signing keys kept in the token store');
  group
    .command('rotate')
    .description('publish a new signing key now; it signs after --publish-ahead seconds, the old one stays published until its assertions expired')
    .option('--publish-ahead <seconds>', 'seconds between publishing the new key and signing with it', seconds, 60)
    .option('--alg <alg>', 'ES256 (P-256) or EdDSA (Ed25519)', alg, 'ES256')
    .option('--json', 'print the result as JSON')
    .action(async (opts: RotateOpts) => rotate(opts));
}
