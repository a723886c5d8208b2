/**
 * RemoteSession.open: a session opened through a real daemon (POST /v1/remote/sessions) on the
 * simulated backend, its worker a task on the fake driver with the real libgpushare the
 * launcher preloads. The slice's memory limit holds for the SDK, the task ends with the session,
 * and a refusal comes back with the daemon's code.
 */
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes, GsError } from '../../src/domain/index.js';
import { CudaError, RemoteSession } from '../../src/remote/sdk/index.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { Harness } from '../daemon/harness.js';
import { NATIVE, workerBuilt } from './sdk-worker.js';

const built = workerBuilt && existsSync(`${REPO_ROOT}dist/cli/main.js`);

describe.skipIf(!built)('RemoteSession.open through the daemon', () => {
  const h = new Harness();

  beforeAll(async () => {
    // The worker as the daemon's machine would run it, here on the fake driver with the daemon's GPUs (by UUID).
    const worker = join(h.dir, 'worker.sh');
    const fakeFile = join(h.dir, 'fake.json');
    writeFileSync(worker, `#!/bin/sh\nexport LD_LIBRARY_PATH='${NATIVE}/fake'\nexport GPUSHARE_FAKE_CUDA="$(cat '${fakeFile}')"\nexec '${NATIVE}/gpushare-remote-worker' "$@"\n`);
    chmodSync(worker, 0o755);
    await h.start([], { GPUSHARE_REMOTE_WORKER: worker });
    const gpus = await h.client.json<{ gpus: { uuid: string }[] }>('GET', '/v1/gpus');
    writeFileSync(fakeFile, JSON.stringify({ contextBytes: 4 * 2 ** 20, devices: gpus.gpus.map((g) => ({ uuid: g.uuid })) }));
  });
  afterAll(() => h.cleanup());

  it("opens a session with the slice asked, holds it to the slice's memory, and its task ends when it closes", async () => {
    const s = await RemoteSession.open({ daemon: h.socket, memory: '256Mi' });
    expect(s.task).toMatch(/^[0-9a-f]+$/);
    expect((await s.memoryInfo()).total).toBe(256n * 2n ** 20n);
    let got = 0;
    const refused = await (async () => {
      for (;;) {
        try {
          await s.malloc(2 ** 20);
          got += 2 ** 20;
        } catch (err) {
          return err;
        }
      }
    })();
    expect(refused).toBeInstanceOf(CudaError);
    expect((refused as CudaError).resultName).toBe('CUDA_ERROR_OUT_OF_MEMORY');
    expect(got).toBeLessThanOrEqual(256 * 2 ** 20);
    await s.close();
    const ended = await h.waitFor(s.task ?? '');
    expect(ended.state).toBe('exited');
    expect(ended.exitCode).toBe(0);
  });

  it("brings the daemon's refusal back with its code", async () => {
    const err = await RemoteSession.open({ daemon: h.socket, memory: 'lots' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GsError);
    expect((err as GsError).code).toBe(ErrorCodes.invalidArgument);
    expect(((await RemoteSession.open({ daemon: 'not-a-socket' }).catch((e: unknown) => e)) as GsError).code).toBe(ErrorCodes.invalidArgument);
  });
});
