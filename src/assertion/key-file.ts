import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

export type AssertionAlg = 'ES256' | 'EdDSA';
export const ASSERTION_ALGS: readonly AssertionAlg[] = ['ES256', 'EdDSA'];

export interface PrivateKeyMaterial {
  readonly alg: AssertionAlg;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** Raised for a key that is not a P-256 or Ed25519 private key; the message never quotes the key. */
export class KeyFileError extends Error {}

/** The algorithm a private key signs with: EC P-256 → ES256, Ed25519 → EdDSA, anything else refused. */
export function algOf(key: KeyObject): AssertionAlg {
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  const what = key.asymmetricKeyType === 'ec' ? `EC ${key.asymmetricKeyDetails?.namedCurve ?? 'unknown curve'}` : (key.asymmetricKeyType ?? key.type);
  throw new KeyFileError(`unsupported key type ${what} (expected an EC P-256 key for ES256 or an Ed25519 key for EdDSA)`);
}

/** Parses a PEM private key (PKCS#8 or SEC1). */
export function parsePrivateKeyPem(pem: string | Buffer): PrivateKeyMaterial {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new KeyFileError('not a PEM private key (a public key or certificate is not enough; expected -----BEGIN PRIVATE KEY-----)');
  }
  return { alg: algOf(privateKey), privateKey, publicKey: createPublicKey(privateKey) };
}

/** Reads and parses the key file; the error names the file, never its content. */
export function readKeyFile(path: string): PrivateKeyMaterial {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new KeyFileError(code === 'ENOENT' ? `file not found: ${path}` : `cannot read ${path}: ${code ?? (err as Error).message}`);
  }
  try {
    return parsePrivateKeyPem(pem);
  } catch (err) {
    throw new KeyFileError(`${path}: ${(err as Error).message}`);
  }
}
