/**
 * `gpushare k8s controller` on real sockets: HTTPS with a test certificate (made by openssl
 * here), the webhook answering the API server's own AdmissionReview, the extender answering
 * the kube-scheduler's filter over HTTPS and over the plain-HTTP port, health and readiness,
 * certificate rotation, bad configuration, and the built CLI stopping cleanly on SIGTERM.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadControllerConfig, type ControllerConfig } from '../../src/k8s/controller/config.js';
import { startController, type LogFn, type RunningController } from '../../src/k8s/controller/controller.js';
import { startFakeApiServer, type FakeApiServer } from './fake-apiserver.js';
import { gpuNode, gpuPod } from './extender-memory-api.js';
import { REPO_ROOT } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'gpushare-controller-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A self-signed certificate for 127.0.0.1 (the API server would check it against the webhook's caBundle). */
function makeCertificate(name: string, cn: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=${cn}`, '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}

interface Reply {
  status: number;
  json: unknown;
}

async function postHttps(url: string, path: string, body: unknown, ca: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = httpsRequest(new URL(path, url), { method: body === undefined ? 'GET' : 'POST', ca, headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text === '' ? null : JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : data);
  });
}

/** The certificate a fresh TLS connection is served. */
async function servedCommonName(url: string): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: u.hostname, port: Number(u.port), rejectUnauthorized: false }, () => {
      const cert = socket.getPeerX509Certificate() as X509Certificate;
      socket.end();
      resolve(cert.subject);
    });
    socket.on('error', reject);
  });
}

const review = (pod: unknown): unknown => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: { uid: 'r-1', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, operation: 'CREATE', namespace: 'default', object: pod },
});

describe('gpushare k8s controller', () => {
  let api: FakeApiServer;
  let controller: RunningController | null = null;
  const first = makeCertificate('first', 'gpushare-first');
  const second = makeCertificate('second', 'gpushare-second');
  const served = { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') };
  const logs: { level: string; message: string; fields: Record<string, unknown> | undefined }[] = [];
  const log: LogFn = (level, message, fields) => logs.push({ level, message, fields });

  beforeAll(async () => {
    api = await startFakeApiServer();
    api.seed('nodes', gpuNode('n1', 1));
  });
  afterAll(async () => api.close());
  afterEach(async () => {
    await controller?.close();
    controller = null;
  });

  const configOf = (extra: Record<string, unknown> = {}): ControllerConfig => {
    const file = join(dir, 'controller.json');
    writeFileSync(file, JSON.stringify({ listen: { host: '127.0.0.1', port: 0 }, tls: { ...served, reloadSeconds: 3600 }, schedulerName: 'gpu-sched', ...extra }));
    return loadControllerConfig({ config: file });
  };

  it('serves the webhook and the extender over HTTPS, the extender over plain HTTP too, and health', async () => {
    copyFileSync(first.cert, served.cert);
    copyFileSync(first.key, served.key);
    const config = configOf({ extender: { plainHttpPort: 0 } });
    controller = await startController(config, api.kubeConfig(), log);
    const ca = readFileSync(first.cert, 'utf8');
    expect(controller.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(await postHttps(controller.url, '/healthz', undefined, ca)).toEqual({ status: 200, json: { status: 'ok' } });
    expect(await postHttps(controller.url, '/readyz', undefined, ca)).toEqual({ status: 200, json: { status: 'ready' } });

    // The API server's review of a pod with no scheduler: routed to the configured one.
    const pod = gpuPod('p', { 'nvidia.com/gpumem': '1024' });
    delete pod.spec!.schedulerName;
    const admitted = await postHttps(controller.url, '/mutate-pods', review(pod), ca);
    expect(admitted.status).toBe(200);
    const response = (admitted.json as { response: { allowed: boolean; patch: string } }).response;
    expect(response.allowed).toBe(true);
    expect(JSON.parse(Buffer.from(response.patch, 'base64').toString())).toContainEqual({ op: 'add', path: '/spec/schedulerName', value: 'gpu-sched' });
    // A request no GPU of the cluster could take is refused with the reason.
    const huge = await postHttps(controller.url, '/mutate-pods', review(gpuPod('q', { 'nvidia.com/gpumem': '999999' })), ca);
    expect((huge.json as { response: { allowed: boolean; status: { message: string } } }).response).toMatchObject({ allowed: false, status: { message: expect.stringMatching(/largest matching GPU/) } });

    // The kube-scheduler's filter (nodeCacheCapable: names only), over HTTPS and over plain HTTP.
    const filterArgs = { Pod: gpuPod('p', { 'nvidia.com/gpumem': '1024' }), NodeNames: ['n1', 'cpu-only'] };
    const overTls = await postHttps(controller.url, '/gpushare-scheduler/filter', filterArgs, ca);
    expect(overTls.json).toMatchObject({ NodeNames: ['n1'], FailedAndUnresolvableNodes: { 'cpu-only': expect.any(String) }, Error: '' });
    expect(controller.extenderUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const plain = await fetch(`${controller.extenderUrl}/gpushare-scheduler/filter`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(filterArgs) });
    expect(await plain.json()).toEqual(overTls.json);
    // The plain port serves no webhook: admission only over TLS.
    expect((await fetch(`${controller.extenderUrl}/mutate-pods`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(review(pod)) })).status).toBe(404);
    expect((await fetch(`${controller.extenderUrl}/readyz`)).status).toBe(200);
  });

  it('serves a rotated certificate to new connections, and keeps the old one when the new pair is broken', async () => {
    copyFileSync(first.cert, served.cert);
    copyFileSync(first.key, served.key);
    controller = await startController(configOf(), api.kubeConfig(), log);
    expect(await servedCommonName(controller.url)).toBe('CN=gpushare-first');
    expect(await controller.certificates.check()).toBe(false);

    // A broken pair (the new certificate, the old key): refused, reported once, old one kept.
    copyFileSync(second.cert, served.cert);
    logs.length = 0;
    expect(await controller.certificates.check()).toBe(false);
    expect(await controller.certificates.check()).toBe(false);
    expect(logs.filter((l) => l.level === 'error')).toHaveLength(1);
    expect(logs[0]?.fields?.reason).toMatch(/not a usable certificate and key/);
    expect(await servedCommonName(controller.url)).toBe('CN=gpushare-first');

    copyFileSync(second.key, served.key);
    expect(await controller.certificates.check()).toBe(true);
    expect(await servedCommonName(controller.url)).toBe('CN=gpushare-second');
    expect(await postHttps(controller.url, '/healthz', undefined, readFileSync(second.cert, 'utf8'))).toEqual({ status: 200, json: { status: 'ok' } });
  });

  it('stops listening once closed', async () => {
    copyFileSync(first.cert, served.cert);
    copyFileSync(first.key, served.key);
    controller = await startController(configOf(), api.kubeConfig(), log);
    const running = controller;
    controller = null;
    await running.close();
    await expect(postHttps(running.url, '/readyz', undefined, readFileSync(first.cert, 'utf8'))).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe('controller configuration', () => {
  const served = { key: join(dir, 'any.key') };
  writeFileSync(served.key, 'not used');
  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const tls = { cert: '/c', key: '/k' };

  it('fills defaults and lets flags win over the file', () => {
    const c = loadControllerConfig({ config: file('ok.json', JSON.stringify({ tls, suspend: { namespaces: ['batch'] } })), port: '8443', extenderPort: '8080', schedulerName: 'other' });
    expect(c).toEqual({
      schedulerName: 'other',
      listen: { host: '0.0.0.0', port: 8443 },
      tls: { cert: '/c', key: '/k', reloadSeconds: 30 },
      extender: { prefix: '/gpushare-scheduler', plainHttpPort: 8080, explain: true },
      webhook: { path: '/mutate-pods', defaultMemoryMiB: 0 },
      suspend: { namespaces: ['batch'], priorityClasses: [] },
    });
    expect(loadControllerConfig({ tlsCert: '/a', tlsKey: '/b' }).tls).toEqual({ cert: '/a', key: '/b', reloadSeconds: 30 });
  });

  it.each([
    ['an unknown key', { tls, extender: { prefx: '/x' } }, /extender: Unrecognized key: "prefx"/],
    ['a wrong type', { tls, listen: { port: '443' } }, /listen\.port: .*expected number/],
    ['a port out of range', { tls, listen: { port: 70000 } }, /listen\.port: .*<=65535/],
    ['a namespace that is no namespace name', { tls, suspend: { namespaces: ['Batch Jobs'] } }, /suspend\.namespaces\.0: must be a lowercase RFC 1123 label/],
    ['no certificate', {}, /a certificate is required: the API server calls admission webhooks over HTTPS only/],
    ['the plain port on the HTTPS port', { tls, listen: { port: 9443 }, extender: { plainHttpPort: 9443 } }, /extender\.plainHttpPort 9443 is the HTTPS listener's port too/],
  ])('refuses %s with the path and what is wrong', (name, config, message) => {
    expect(() => loadControllerConfig({ config: file(`${name.replace(/\W+/g, '-')}.json`, JSON.stringify(config)) })).toThrow(message);
  });

  it('refuses a missing file, bad JSON, a bad port flag', () => {
    expect(() => loadControllerConfig({ config: join(dir, 'nope.json') })).toThrow(/config file .*nope\.json does not exist/);
    expect(() => loadControllerConfig({ config: file('bad.json', '{nope') })).toThrow(/is not valid JSON/);
    expect(() => loadControllerConfig({ tlsCert: '/a', tlsKey: '/b', port: 'https' })).toThrow(/controller flags: listen\.port: .*expected number/);
  });

  it('a certificate file that does not load stops the start with the file named', async () => {
    const config = loadControllerConfig({ tlsCert: join(dir, 'missing.crt'), tlsKey: served.key });
    const api = await startFakeApiServer();
    try {
      await expect(startController(config, api.kubeConfig(), () => undefined)).rejects.toThrow(/tls\.cert .*missing\.crt cannot be read/);
    } finally {
      await api.close();
    }
  });
});

describe('the built CLI', () => {
  it('gpushare k8s controller serves, then stops cleanly on SIGTERM', async () => {
    if (!existsSync(`${REPO_ROOT}dist/cli/main.js`)) throw new Error('dist/ is missing: run `npm run build` before the CLI tests');
    const api = await startFakeApiServer();
    api.seed('nodes', gpuNode('n1', 1));
    const cert = makeCertificate('cli', 'gpushare-cli');
    const kubeconfig = join(dir, 'kubeconfig.json');
    writeFileSync(kubeconfig, JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'f', cluster: { server: api.url } }], users: [{ name: 'u', user: { token: 't' } }], contexts: [{ name: 'c', context: { cluster: 'f', user: 'u' } }], 'current-context': 'c' }));
    const child = spawn(process.execPath, [`${REPO_ROOT}bin/gpushare.js`, 'k8s', 'controller', '--tls-cert', cert.cert, '--tls-key', cert.key, '--port', '0', '--kubeconfig', kubeconfig], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      let stderr = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (c: string) => (stderr += c));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      for (let i = 0; i < 500 && !stderr.includes('"msg":"serving"'); i++) await new Promise((r) => setTimeout(r, 20));
      expect(stderr).toContain('"msg":"serving"');
      const url = (JSON.parse(stderr.split('\n').find((l) => l.includes('"msg":"serving"')) ?? '{}') as { url: string }).url;
      expect(await postHttps(url, '/healthz', undefined, readFileSync(cert.cert, 'utf8'))).toEqual({ status: 200, json: { status: 'ok' } });
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stderr).toContain('"msg":"stopped"');
    } finally {
      child.kill('SIGKILL');
      await api.close();
    }
  });

  it('a bad config exits non-zero with the reason', () => {
    const r = execFileSyncStatus([`${REPO_ROOT}bin/gpushare.js`, 'k8s', 'controller', '--port', '443']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/a certificate is required/);
  });
});

function execFileSyncStatus(args: string[]): { status: number | null; stderr: string } {
  try {
    execFileSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 20_000 });
    return { status: 0, stderr: '' };
  } catch (e) {
    const err = e as { status: number | null; stderr: string };
    return { status: err.status, stderr: err.stderr };
  }
}
