import type { Logger } from 'pino';
import type { Route } from '../admin/http-server';
import type { AssertionConfig } from '../config/types';
import type { CheckFn } from '../pipeline/decision';
import type { Db } from '../store/db';
import type { TokenChangeFeed } from '../store/notify';
import type { TokenIndex } from '../store/token-index';
import { withAssertions } from './decorate';
import { FileKeySource, StoreKeySource, type KeySource } from './key-source';
import { wellKnownRoutes } from './routes';
import { AssertionSigner } from './signer';

export interface Assertions {
  readonly source: KeySource;
  readonly signer: AssertionSigner;
  readonly routes: readonly Route[];
  wrap(check: CheckFn): CheckFn;
  stop(): void;
}

export interface AssertionDeps {
  readonly db: Db;
  readonly index: TokenIndex;
  readonly feed: TokenChangeFeed;
  readonly logger: Logger;
  /** Key poll interval (the fallback when a NOTIFY was missed). */
  readonly pollIntervalMs?: number;
  readonly keyFileWatchMs?: number;
}

/**
 * Wires identity assertions: the key source (file, else the token store followed through the
 * token feed and a poll), the signer whose cache forgets a credential as soon as the index sees
 * it change, the Check decorator and the well-known routes. Throws when the key file is unusable.
 */
export async function startAssertions(cfg: AssertionConfig, deps: AssertionDeps): Promise<Assertions> {
  // The database clock, as the token index measures it: key switch-over instants are written on it.
  const now = () => deps.index.dbNow();
  const ttlMs = cfg.ttlSeconds * 1000;
  const source: KeySource = cfg.keyFile
    ? new FileKeySource(cfg.keyFile, { ttlMs, now, logger: deps.logger, watchIntervalMs: deps.keyFileWatchMs })
    : new StoreKeySource(deps.db, { alg: 'ES256', logger: deps.logger, pollIntervalMs: deps.pollIntervalMs });
  await source.start();
  if (source instanceof StoreKeySource) deps.feed.onAssertionKeys(() => void source.reload());
  const signer = new AssertionSigner({ source, issuer: cfg.issuer, ttlSeconds: cfg.ttlSeconds, now });
  deps.index.onChange((id) => signer.dropToken(id));
  deps.logger.info({ header: cfg.header, issuer: cfg.issuer, keys: source.kind, ttl_s: cfg.ttlSeconds }, 'identity assertions on');
  return {
    source,
    signer,
    routes: wellKnownRoutes({ source, issuer: cfg.issuer, now }),
    wrap: (check) => withAssertions(check, { signer, header: cfg.header, audience: cfg.audience, logger: deps.logger }),
    stop: () => source.stop(),
  };
}
