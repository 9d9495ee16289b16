import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, importPKCS8, type CryptoKey, type JWK } from 'jose';
import type { AssertionAlg } from './key-file';

/** One signing key as every replica sees it: published from creation, signing from `signsFrom`. */
export interface SigningKey {
  readonly kid: string;
  readonly alg: AssertionAlg;
  /** Absent for a key this replica can publish but not use (not expected, but never fatal). */
  readonly privateKey?: CryptoKey | undefined;
  /** Public JWK with `kid`, `alg` and `use`. */
  readonly publicJwk: JWK;
  /** Epoch ms (database clock) from which the key signs. */
  readonly signsFrom: number;
  /** Epoch ms after which the key is no longer published; undefined while current. */
  readonly retireAfter?: number | undefined;
}

/**
 * Clock skew between replicas and the upstream's own clock: a retired key stays published this
 * much longer than its last assertion's `exp`.
 */
export const RETIRE_MARGIN_MS = 60_000;

/** An immutable key set; the clock decides which key signs and which are published. */
export class KeySet {
  constructor(readonly keys: readonly SigningKey[]) {}

  private live(k: SigningKey, now: number): boolean {
    return k.retireAfter === undefined || k.retireAfter > now;
  }

  /** The newest key whose signing time has come (a key published ahead waits). */
  signing(now: number): SigningKey | undefined {
    let best: SigningKey | undefined;
    for (const k of this.keys) {
      if (!k.privateKey || k.signsFrom > now || !this.live(k, now)) continue;
      if (!best || k.signsFrom > best.signsFrom || (k.signsFrom === best.signsFrom && k.kid > best.kid)) best = k;
    }
    return best;
  }

  /** Every key an upstream may meet: published ahead of signing, kept until its last assertion expired. */
  published(now: number): JWK[] {
    return this.keys.filter((k) => this.live(k, now)).map((k) => k.publicJwk);
  }
}

export const EMPTY_KEY_SET = new KeySet([]);

/** The public JWK an upstream sees: kid is the RFC 7638 thumbprint, so the same key always has the same kid. */
export async function publicJwkOf(publicKey: KeyObject, alg: AssertionAlg): Promise<JWK> {
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { ...jwk, kid, alg, use: 'sig' };
}

/** A new private key, PKCS#8 PEM (what the store keeps). */
export function generatePrivatePem(alg: AssertionAlg): { pem: string; publicKey: KeyObject } {
  const pair = alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { pem: pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), publicKey: pair.publicKey };
}

/** Imported once per key: jose signs with a WebCrypto key without re-parsing PEM per assertion. */
export function importSigningKey(pem: string, alg: AssertionAlg): Promise<CryptoKey> {
  return importPKCS8(pem, alg);
}
