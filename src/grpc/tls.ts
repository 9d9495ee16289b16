import * as grpc from '@grpc/grpc-js';
import type { TlsFiles } from '../config/types';

/** How often certificate files are re-read: cert-manager renewals are picked up without a restart. */
export const TLS_REFRESH_MS = 5000;

/**
 * Insecure without files (the sidecar listens on localhost); TLS with a server certificate; mTLS
 * when a client CA is given (a client without a certificate signed by it is refused in the
 * handshake). grpc-js's file-watcher provider re-reads the files, so rotation needs no restart.
 */
export async function grpcServerCredentials(tls: TlsFiles | undefined, refreshMs = TLS_REFRESH_MS): Promise<grpc.ServerCredentials> {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const { FileWatcherCertificateProvider, createCertificateProviderServerCredentials } = grpc.experimental;
  const identity = new FileWatcherCertificateProvider({ certificateFile: tls.cert, privateKeyFile: tls.key, refreshIntervalMs: refreshMs });
  const clientCa = tls.clientCa ? new FileWatcherCertificateProvider({ caCertificateFile: tls.clientCa, refreshIntervalMs: refreshMs }) : null;
  // The providers read the files asynchronously; a handshake before the first read fails, so the
  // listener opens only once both have delivered (or start-up fails naming the files).
  await Promise.all([
    firstUpdate((l) => identity.addIdentityCertificateListener(l), (l) => identity.removeIdentityCertificateListener(l), `${tls.cert} / ${tls.key}`),
    clientCa ? firstUpdate((l) => clientCa.addCaCertificateListener(l), (l) => clientCa.removeCaCertificateListener(l), tls.clientCa!) : undefined,
  ]);
  // The function's parameter names are swapped in grpc-js's typings: it takes the identity
  // provider first, then the CA provider (see CertificateProviderServerCredentials' constructor).
  return createCertificateProviderServerCredentials(identity, clientCa, clientCa !== null);
}

function firstUpdate<L extends (u: unknown) => void>(add: (l: L) => void, remove: (l: L) => void, files: string, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      remove(listener);
      reject(new Error(`TLS files could not be read within ${timeoutMs} ms: ${files}`));
    }, timeoutMs);
    const listener = ((u: unknown) => {
      if (u === null) return;
      clearTimeout(timer);
      // Removed on the next tick: the provider is iterating its listeners right now.
      setImmediate(() => remove(listener));
      resolve();
    }) as L;
    add(listener);
  });
}
