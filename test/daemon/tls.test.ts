import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, resolveTarget } from '../../src/cli/client.js';
import { makePki, renewServerCert, type TestPki } from '../helpers/tls.js';
import { freePort } from '../helpers/api.js';
import { Harness } from './harness.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const plain = new Harness();
const mutual = new Harness();
let pki: TestPki;
let url = '';
let mutualUrl = '';


beforeAll(async () => {
  pki = makePki(plain.dir);
  const config = join(plain.dir, 'config.json');
  writeFileSync(config, JSON.stringify({ tokens: [{ sha256: sha('alice-secret'), tenant: 'alice' }] }));
  const port = await freePort();
  url = `https://127.0.0.1:${port}`;
  await plain.start(['--config', config, '--tls-cert', pki.serverCert, '--tls-key', pki.serverKey], {}, undefined, [`127.0.0.1:${port}`]);
  const mport = await freePort();
  mutualUrl = `https://127.0.0.1:${mport}`;
  await mutual.start(['--config', config, '--tls-cert', pki.serverCert, '--tls-key', pki.serverKey, '--tls-client-ca', pki.ca], {}, undefined, [`127.0.0.1:${mport}`]);
}, 60_000);
afterAll(async () => {
  await plain.cleanup();
  await mutual.cleanup();
});

describe('TLS on the TCP listener', () => {
  it('the CLI talks https to it with the CA given (--ca-file or GPUSHARE_CA_FILE), and refuses an untrusted certificate saying what to do', async () => {
    const env = { GPUSHARE_HOST: url, GPUSHARE_TOKEN: 'alice-secret' };
    const ok = await plain.run(['ps'], { ...env, GPUSHARE_CA_FILE: pki.ca });
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    const flag = await plain.run(['ps', '--ca-file', pki.ca], env);
    expect(flag.status).toBe(0);
    for (const untrusted of [{}, { GPUSHARE_CA_FILE: pki.otherCa }] as Record<string, string>[]) {
      const r = await plain.run(['ps'], { ...env, ...untrusted });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/cannot verify the daemon at https:\/\/127\.0\.0\.1:\d+: its certificate is not trusted .*give the CA that signed it with --ca-file or GPUSHARE_CA_FILE/);
    }
    const missing = await plain.run(['ps'], { ...env, GPUSHARE_CA_FILE: join(plain.dir, 'nope.pem') });
    expect(missing.stderr).toMatch(/cannot read the CA file \(--ca-file, GPUSHARE_CA_FILE\) .*nope\.pem/);
    // Plain HTTP to the TLS port gets nowhere.
    await expect(new Client({ kind: 'tcp', url: new URL(url.replace('https', 'http')), token: 'alice-secret' }).json('GET', '/v1/tasks')).rejects.toThrow();
  });

  it('says where it listens as https://', () => {
    expect(plain.log).toContain(`listening on`);
    expect(plain.log).toMatch(/https:\/\/127\.0\.0\.1:\d+/);
  });

  it('with a client CA, a client without a certificate it signed is refused; one with it gets in (and still needs a token)', async () => {
    const env = { GPUSHARE_CA_FILE: pki.ca, GPUSHARE_TOKEN: 'alice-secret' };
    const withCert = new Client(resolveTarget(mutualUrl, { ...env, GPUSHARE_CLIENT_CERT: pki.clientCert, GPUSHARE_CLIENT_KEY: pki.clientKey }));
    expect(await withCert.json('GET', '/v1/tasks')).toEqual([]);
    const noToken = new Client(resolveTarget(mutualUrl, { GPUSHARE_CA_FILE: pki.ca, GPUSHARE_CLIENT_CERT: pki.clientCert, GPUSHARE_CLIENT_KEY: pki.clientKey }));
    await expect(noToken.json('GET', '/v1/tasks')).rejects.toMatchObject({ code: 'GS_ERR_UNAUTHENTICATED' });
    const noCert = new Client(resolveTarget(mutualUrl, env));
    await expect(noCert.json('GET', '/v1/tasks')).rejects.toThrow();
  });
});

describe('a renewed certificate', () => {
  it('is served to new connections after SIGHUP, with the same paths in the config file; connections keep working across it', async () => {
    const h = new Harness();
    try {
      const certDir = join(h.dir, 'pki');
      mkdirSync(certDir);
      const first = makePki(certDir);
      const live = { cert: join(h.dir, 'tls.pem'), key: join(h.dir, 'tls.key') };
      copyFileSync(first.serverCert, live.cert);
      copyFileSync(first.serverKey, live.key);
      const config = join(h.dir, 'config.json');
      writeFileSync(config, JSON.stringify({ tokens: [{ sha256: sha('alice-secret'), tenant: 'alice' }], tls: live }));
      const port = await freePort();
      await h.start(['--config', config], {}, undefined, [`127.0.0.1:${port}`]);
      const served = (): Promise<string> => new Promise((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port, ca: readFileSync(first.ca), servername: 'localhost' }, () => {
          const cn = socket.getPeerCertificate().subject?.CN;
          socket.end();
          resolve(String(cn));
        });
        socket.once('error', reject);
      });
      expect(await served()).toBe('server');
      const client = new Client(resolveTarget(`https://127.0.0.1:${port}`, { GPUSHARE_CA_FILE: first.ca, GPUSHARE_TOKEN: 'alice-secret' }));
      expect(await client.json('GET', '/v1/tasks')).toEqual([]);

      const renewed = renewServerCert(certDir, 'server-renewed');
      copyFileSync(renewed.cert, live.cert);
      copyFileSync(renewed.key, live.key);
      h.signal('SIGHUP');
      const deadline = Date.now() + 10_000;
      let now = await served();
      while (now !== 'server-renewed' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        now = await served();
      }
      expect(now).toBe('server-renewed');
      expect(await client.json('GET', '/v1/tasks')).toEqual([]);
    } finally {
      await h.cleanup();
    }
  });
});

describe('plain TCP off loopback', () => {
  it('refuses to start, saying how to give a certificate or allow it', async () => {
    const h = new Harness();
    try {
      const config = join(h.dir, 'config.json');
      writeFileSync(config, JSON.stringify({ tokens: [{ sha256: sha('x'), tenant: 'alice' }] }));
      await expect(h.start(['--config', config], {}, undefined, ['0.0.0.0:0'])).rejects.toThrow(/0\.0\.0\.0:0 is not a loopback address.*--insecure/s);
    } finally {
      await h.cleanup();
    }
  });
});
