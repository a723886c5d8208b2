import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../test/helpers/cli.js';
import { CHECKPOINT_ERROR_CODES, openCheckpointApi, uuidBytes, type CheckpointApi } from './checkpoint.js';

/**
 * The koffi binding in this process, driving another process (fake-train on the fake driver)
 * through the fake's cross-process checkpoint (native/testing/fake_cuda_checkpoint.h).
 */
const FAKE = `${REPO_ROOT}build/native/fake/libcuda.so.1`;
const TRAIN = `${REPO_ROOT}build/native/fake/fake-train`;
const A = 'GPU-a0000000-0000-4000-8000-00000000000a';
const B = 'GPU-b0000000-0000-4000-8000-00000000000b';
const dir = mkdtempSync(join(tmpdir(), 'gpushare-ckpt-'));
let api: CheckpointApi;

beforeAll(() => {
  expect(existsSync(TRAIN), `${TRAIN} is built by npm run build`).toBe(true);
  process.env['GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR'] = dir;
  const opened = openCheckpointApi(FAKE);
  if (!opened.ok) throw new Error(opened.error.message);
  api = opened.value;
});
afterAll(() => {
  api.close();
  delete process.env['GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR'];
  rmSync(dir, { recursive: true, force: true });
});

function train(args: string[]): { child: ChildProcess; out: () => string; ready: Promise<void>; done: Promise<number | null> } {
  const devices = { devices: [{ name: 'NVIDIA H200', uuid: A }, { name: 'NVIDIA H200', uuid: B }], contextBytes: 2 ** 20 };
  const child = spawn(TRAIN, args, { env: { ...process.env, GPUSHARE_FAKE_CUDA: JSON.stringify(devices), CUDA_VISIBLE_DEVICES: A }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => (onReady = r));
  child.stdout?.on('data', (b: Buffer) => {
    out += b.toString();
    if (out.includes('ready')) onReady();
  });
  const done = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, out: () => out, ready, done };
}

describe('checkpoint API (koffi on the fake libcuda, another process)', () => {
  it('runs the whole cycle: errors for wrong states change nothing, the task finishes with its bytes on the other GPU', async () => {
    const t = train(['40', '20', '16', '3']);
    await t.ready;
    const pid = t.child.pid ?? -1;
    expect(api.state(pid)).toEqual({ ok: true, value: 'running' });
    const tid = api.restoreThreadId(pid);
    expect(tid.ok && tid.value > 0 && tid.value !== pid).toBe(true);
    const early = await api.checkpoint(pid);
    expect(early.ok).toBe(false);
    if (!early.ok) {
      expect(early.error.code).toBe(CHECKPOINT_ERROR_CODES.illegalState);
      expect(early.error.cudaResult).toBe(401);
      expect(early.error.message).toMatch(/cuCheckpointProcessCheckpoint\(\d+\) failed: CUDA_ERROR_ILLEGAL_STATE/);
    }
    expect(api.state(pid)).toEqual({ ok: true, value: 'running' });

    expect((await api.lock(pid, 10_000)).ok).toBe(true);
    expect((await api.checkpoint(pid)).ok).toBe(true);
    expect(api.state(pid)).toEqual({ ok: true, value: 'checkpointed' });
    // A step whose CUDA calls returned just before the lock may still print; none after it.
    await new Promise((r) => setTimeout(r, 300));
    const steps = t.out();
    const bad = await api.restore(pid, [{ from: B, to: A }]);
    expect(!bad.ok && bad.error.code).toBe(CHECKPOINT_ERROR_CODES.invalidValue);
    const notUuid = await api.restore(pid, [{ from: 'nonsense', to: A }]);
    expect(!notUuid.ok && notUuid.error.code).toBe(CHECKPOINT_ERROR_CODES.invalidValue);
    expect(api.state(pid)).toEqual({ ok: true, value: 'checkpointed' });
    expect((await api.restore(pid, [{ from: A, to: B }])).ok).toBe(true);
    expect(api.state(pid)).toEqual({ ok: true, value: 'locked' });
    expect(t.out()).toBe(steps); // still locked: no step finished
    expect((await api.unlock(pid)).ok).toBe(true);
    expect(await t.done).toBe(0);
    expect(t.out()).toMatch(/^start device GPU-a0000000-/m);
    expect(t.out()).toMatch(/^end device GPU-b0000000-/m);
    expect(t.out()).toMatch(/^result ok sum=/m);
  }, 30_000);

  it('says a pid without CUDA is not found, and a library without the API is unavailable', async () => {
    const r = await api.lock(2 ** 22 + 12345, 1000);
    expect(!r.ok && r.error.code).toBe(CHECKPOINT_ERROR_CODES.notFound);
    const none = openCheckpointApi(join(dir, 'no-such-libcuda.so'));
    expect(!none.ok && none.error.code).toBe(CHECKPOINT_ERROR_CODES.unavailable);
    const nvml = openCheckpointApi(`${REPO_ROOT}build/native/fake/libnvidia-ml.so.1`);
    expect(!nvml.ok && nvml.error.message).toMatch(/no checkpoint API/);
  });

  it('reads UUIDs as the driver does', () => {
    expect(uuidBytes(A)?.toString('hex')).toBe('a00000000000400080000000000000' + '0a');
    expect(uuidBytes('GPU-123')).toBeNull();
  });
});
