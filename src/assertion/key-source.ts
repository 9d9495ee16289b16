import { unwatchFile, watchFile } from 'node:fs';
import type { Logger } from 'pino';
import type { Db } from '../store/db';
import { readKeyFile, type AssertionAlg } from './key-file';
import { EMPTY_KEY_SET, importSigningKey, KeySet, publicJwkOf, RETIRE_MARGIN_MS, type SigningKey } from './keys';
import { ensureKey, loadKeyRows } from './key-store';

/** Where the signing keys come from; `keys()` is read on every signature, so it is a plain field read. */
export interface KeySource {
  readonly kind: 'file' | 'store';
  keys(): KeySet;
  start(): Promise<void>;
  stop(): void;
}

/**
 * `ORCHEO_AUTH_ASSERTION_KEY_FILE`: re-read when the file changes (a Secret update or a symlink
 * swap). The new key signs at once; the previous one stays published for one assertion lifetime
 * (plus margin) so what it signed still verifies.
 */
export class FileKeySource implements KeySource {
  readonly kind = 'file';
  private set: KeySet = EMPTY_KEY_SET;
  private current: SigningKey | undefined;
  private retired: SigningKey[] = [];

  constructor(
    private readonly path: string,
    private readonly opts: { ttlMs: number; now: () => number; logger: Logger; watchIntervalMs?: number },
  ) {}

  keys(): KeySet {
    return this.set;
  }

  /** Throws (naming the file) when the key cannot be read at start. */
  async start(): Promise<void> {
    await this.load();
    watchFile(this.path, { interval: this.opts.watchIntervalMs ?? 1000, persistent: false }, (cur, prev) => {
      if (cur.mtimeMs === prev.mtimeMs && cur.ino === prev.ino && cur.size === prev.size) return;
      this.load().then(
        (changed) => changed && this.opts.logger.info({ file: this.path, kid: this.current?.kid }, 'assertion key file reloaded'),
        (err: unknown) => this.opts.logger.error({ err: (err as Error).message }, 'assertion key file reload failed; keeping the previous key'),
      );
    });
  }

  /** Reads the file; true when it now holds a different key. */
  async load(): Promise<boolean> {
    const m = readKeyFile(this.path);
    const pem = m.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const jwk = await publicJwkOf(m.publicKey, m.alg);
    if (jwk.kid === this.current?.kid) return false;
    const now = this.opts.now();
    // signsFrom only orders the file's generations (each newer one wins); it is always in the past.
    const key: SigningKey = { kid: jwk.kid!, alg: m.alg, privateKey: await importSigningKey(pem, m.alg), publicJwk: jwk, signsFrom: (this.current?.signsFrom ?? -1) + 1 };
    if (this.current) this.retired.push({ ...this.current, retireAfter: now + this.opts.ttlMs + RETIRE_MARGIN_MS });
    this.retired = this.retired.filter((k) => (k.retireAfter ?? 0) > now && k.kid !== key.kid);
    this.current = key;
    this.set = new KeySet([...this.retired, key]);
    return true;
  }

  stop(): void {
    unwatchFile(this.path);
  }
}

/**
 * Keys kept in the token store, shared by every replica: a key is generated once (by whichever
 * replica starts first), and every replica reloads the set on a NOTIFY and on a periodic poll.
 */
export class StoreKeySource implements KeySource {
  readonly kind = 'store';
  private set: KeySet = EMPTY_KEY_SET;
  /** Parsed private keys by kid: a reload re-imports only new keys. */
  private imported = new Map<string, SigningKey>();
  private timer: NodeJS.Timeout | undefined;
  private loading: Promise<void> | undefined;
  private failing = false;
  private ensured = false;

  constructor(private readonly db: Db, private readonly opts: { alg: AssertionAlg; logger: Logger; pollIntervalMs?: number }) {}

  keys(): KeySet {
    return this.set;
  }

  /** Never throws: with the store down the set stays empty (signing denies 503) until a reload succeeds. */
  async start(): Promise<void> {
    await this.reload();
    this.timer = setInterval(() => void this.reload(), this.opts.pollIntervalMs ?? 1000);
    this.timer.unref();
  }

  /** Reloads the set; concurrent callers share one read. */
  reload(): Promise<void> {
    this.loading ??= this.read()
      .then(() => {
        if (this.failing) this.opts.logger.info('assertion keys loaded from the token store again');
        this.failing = false;
      })
      .catch((err: unknown) => {
        // Once per outage: the poll retries every interval.
        if (!this.failing) this.opts.logger.warn({ err: (err as Error).message }, 'cannot load assertion keys from the token store; keeping the loaded set');
        this.failing = true;
      })
      .finally(() => {
        this.loading = undefined;
      });
    return this.loading;
  }

  private async read(): Promise<void> {
    if (!this.ensured) {
      if (await ensureKey(this.db, this.opts.alg)) this.opts.logger.info('generated the first identity assertion key in the token store');
      this.ensured = true;
    }
    const rows = await loadKeyRows(this.db);
    const next = new Map<string, SigningKey>();
    for (const r of rows) {
      const prev = this.imported.get(r.kid);
      const privateKey = prev?.privateKey ?? (await importSigningKey(r.privatePem, r.alg));
      next.set(r.kid, { kid: r.kid, alg: r.alg, privateKey, publicJwk: r.publicJwk, signsFrom: r.signsFrom, retireAfter: r.retireAfter });
    }
    this.imported = next;
    this.set = new KeySet([...next.values()]);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
