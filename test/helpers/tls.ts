/**
 * Certificates for TLS tests, made at test time with openssl (no private key is checked in):
 * a CA, a server certificate for 127.0.0.1/localhost and a client certificate, both signed by it.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestPki {
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** A second CA that signed nothing here: trusting it must not be enough. */
  readonly otherCa: string;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const SERVER_EXT = 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n';

/** A key and a certificate for `name` signed by the CA in `dir` (ca.pem, ca.key): `<name>.pem`, `<name>.key`. */
function signWithCa(dir: string, name: string, ext: string): void {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(dir, 'req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
}

/** Another server certificate (new key, CN `name`) from the same CA as makePki's, for a renewal. */
export function renewServerCert(dir: string, name: string): { readonly cert: string; readonly key: string } {
  signWithCa(dir, name, SERVER_EXT);
  return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
}

export function makePki(dir: string): TestPki {
  openssl(dir, 'req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=gpushare test CA');
  openssl(dir, 'req', '-x509', ...EC, '-keyout', 'other-ca.key', '-out', 'other-ca.pem', '-days', '2', '-subj', '/CN=another CA');
  signWithCa(dir, 'server', SERVER_EXT);
  signWithCa(dir, 'client', 'extendedKeyUsage=clientAuth\n');
  const at = (f: string): string => join(dir, f);
  return { ca: at('ca.pem'), serverCert: at('server.pem'), serverKey: at('server.key'), clientCert: at('client.pem'), clientKey: at('client.key'), otherCa: at('other-ca.pem') };
}
