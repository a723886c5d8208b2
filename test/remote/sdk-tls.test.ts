/**
 * The SDK's TLS (docs/remote.md "TLS"): TLS 1.3 with the worker's certificate pinned by its
 * SHA-256. Against a fake worker over TLS with a certificate made here: the right pin works
 * (colons and upper case accepted), a wrong one is refused before a single frame is written (the
 * key never leaves), and a plaintext worker with a pin is an error, never a fallback. Against the
 * real worker with --tls when the build has it.
 */
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes, type GsError } from '../../src/domain/index.js';
import { RemoteSession } from '../../src/remote/sdk/index.js';
import { makePki } from '../helpers/tls.js';
import { FakeWorker, reply } from './sdk-fake-worker.js';
import { WORKER, NATIVE, startWorker, workerBuilt } from './sdk-worker.js';

/** Whether this build's worker takes --tls (and finds OpenSSL): it then prints a tls-sha256 pin. */
const workerTls =
  workerBuilt &&
  /tls-sha256 [0-9a-f]{64}/.test(spawnSync(WORKER, ['--listen', '127.0.0.1:0', '--tls', '--accept-timeout-ms', '1'], { env: { ...process.env, LD_LIBRARY_PATH: `${NATIVE}/fake`, GPUSHARE_REMOTE_KEY: 'ab'.repeat(32) }, encoding: 'utf8', timeout: 10_000 }).stdout ?? '');

async function refusal(p: Promise<unknown>): Promise<GsError> {
  return p.then(
    () => {
      throw new Error('expected a refusal');
    },
    (e: GsError) => e,
  );
}

describe('the SDK over TLS with a pinned certificate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gs-sdk-tls-'));
  const pki = makePki(dir);
  const tlsFake = new FakeWorker({ cert: readFileSync(pki.serverCert, 'utf8'), key: readFileSync(pki.serverKey, 'utf8') });
  const plainFake = new FakeWorker();
  const fingerprint = new X509Certificate(readFileSync(pki.serverCert)).fingerprint256; // "AB:CD:..."
  beforeAll(async () => {
    await tlsFake.start();
    await plainFake.start();
    for (const f of [tlsFake, plainFake]) f.answer = (s, op, id) => s.write(reply(op, id, 'i', [0]));
  });
  afterAll(async () => {
    await tlsFake.stop();
    await plainFake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('speaks the protocol inside TLS 1.3 when the certificate is the pinned one', async () => {
    for (const pin of [fingerprint, fingerprint.replaceAll(':', '').toLowerCase()]) {
      const s = await tlsFake.connect({ tlsSha256: pin });
      expect(await s.contextDevice()).toBe(0);
      await s.close();
    }
  });

  it('refuses another certificate before writing a frame: the key never reaches it', async () => {
    const before = tlsFake.received;
    const err = await refusal(tlsFake.connect({ tlsSha256: 'ab'.repeat(32) }));
    expect(err.code).toBe(ErrorCodes.remoteLinkLost);
    expect(err.message).toContain('not the pinned one');
    expect(err.details).toEqual({ reason: 'tlsPin' });
    expect(tlsFake.received).toBe(before);
  });

  it('never falls back to plaintext, and refuses a malformed pin', async () => {
    const before = plainFake.received;
    const err = await refusal(plainFake.connect({ tlsSha256: fingerprint }));
    expect(err.code).toBe(ErrorCodes.remoteLinkLost);
    expect(plainFake.received).toBeGreaterThan(before); // its TLS hello, which a plaintext worker drops
    expect((await refusal(tlsFake.connect({ tlsSha256: 'xyz' }))).code).toBe(ErrorCodes.invalidArgument);
  });

  it.skipIf(!workerTls)('runs a session against the real worker started with --tls', async () => {
    const worker = await startWorker({}, ['--tls']);
    expect(worker.tlsSha256).toMatch(/^[0-9a-f]{64}$/);
    const s = await RemoteSession.connect({ endpoint: worker.endpoint, key: worker.key, tlsSha256: worker.tlsSha256 as string });
    const p = await s.malloc(3 * 2 ** 20);
    const data = Buffer.alloc(3 * 2 ** 20, 0x42);
    await s.copyIn(p, data);
    expect(Buffer.compare(Buffer.from(await s.copyOut(p, data.length)), data)).toBe(0);
    await s.close();
    expect((await worker.ended).code).toBe(0);
  });
});
