import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  readonly dir: string;
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  read(file: string): Buffer;
  /** Issues a fresh server certificate into the same files (a cert-manager renewal). */
  renewServer(): string;
  cleanup(): void;
}

const run = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: 'pipe' });

/** A throwaway CA with a server certificate for 127.0.0.1/localhost and a client certificate (openssl). */
export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'authz-pki-'));
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=orcheo-authz test CA'], dir);
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  const issue = (name: string, cn: string) => {
    run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
    run(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`], dir);
    return run(['x509', '-in', `${name}.crt`, '-noout', '-serial'], dir).toString().trim().replace(/^serial=/, '');
  };
  issue('server', 'localhost');
  issue('client', 'envoy');
  const p = (f: string) => join(dir, f);
  return {
    dir,
    caCert: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
    read: (f) => readFileSync(f),
    renewServer: () => issue('server', 'localhost'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
