/**
 * Suspend and resume by slice swap (issue 22): the real daemon with --swap on the simulated
 * backend, fake-train on the fake CUDA driver under the real libgpushare. The daemon swaps the
 * task's memory out through the library's control socket and stops it; resume continues it and
 * swaps it back in; the CLI and the events say which path ran and how fast. A task the library
 * cannot swap (no swappable allocation: below the VMM granularity) goes through the checkpoint
 * API, and says why.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskBody } from '../../src/contract/schemas.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { Harness, procState, sleep, stateBecomes } from './harness.js';

const TRAIN = `${REPO_ROOT}build/native/fake/fake-train`;
const MiB = 2 ** 20;

async function waitForOutput(task: TaskBody, text: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(existsSync(task.stdoutPath) && readFileSync(task.stdoutPath, 'utf8').includes(text))) {
    if (Date.now() > deadline) throw new Error(`task ${task.id} never printed "${text}"`);
    await sleep(30);
  }
}

/** The fake's per-process file: device bytes this process holds now. */
function deviceBytes(ckpt: string, pid: number): number | null {
  const path = join(ckpt, `${pid}.ckpt`);
  if (!existsSync(path)) return null;
  const b = readFileSync(path);
  return Number(b.readBigUInt64LE(48 + 16 * 2 * 16 + 48));
}

function livePids(ckpt: string): number[] {
  return readdirSync(ckpt)
    .map((f) => Number(f.replace('.ckpt', '')))
    .filter((p) => procState(p) !== null && procState(p) !== 'Z');
}

describe('suspend and resume by slice swap (the default: no flag)', () => {
  const h = new Harness();
  let ckpt = '';
  let fake = '';
  beforeAll(async () => {
    expect(existsSync(TRAIN), `${TRAIN} is built by npm run build`).toBe(true);
    ckpt = join(h.dir, 'ckpt');
    mkdirSync(ckpt, { recursive: true });
    // No --swap: slice swap is the daemon's default (issue 22 item 2); what follows proves it.
    await h.start(['--pass-env', 'GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR'], { GPUSHARE_CUDA_PATH: `${REPO_ROOT}build/native/fake/libcuda.so.1`, GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR: ckpt });
    const gpus = await h.client.json<{ gpus: { uuid: string }[] }>('GET', '/v1/gpus');
    fake = JSON.stringify({ contextBytes: 4 * MiB, devices: gpus.gpus.map((g) => ({ uuid: g.uuid, name: 'NVIDIA H100 80GB HBM3' })) });
  });
  afterAll(async () => {
    await h.cleanup();
  });

  it('swaps a task out (GPU memory freed, processes stopped) and in; it finishes with every byte; the CLI and events say swap', async () => {
    const id = await h.detach(['--mem', '8Gi', '-e', `GPUSHARE_FAKE_CUDA=${fake}`, '--', TRAIN, '60', '40', '16', '5']);
    const task = await h.task(id);
    await waitForOutput(task, 'ready');
    const [pid] = livePids(ckpt);
    const before = deviceBytes(ckpt, pid ?? -1) ?? 0;
    expect(before).toBeGreaterThanOrEqual(16 * MiB);

    const s = await h.run(['suspend', id]);
    expect(s.stderr).toBe('');
    expect(s.stdout).toMatch(new RegExp(`^${id} suspended in \\d+\\.\\d\\d s, [\\d.]+ MiB of GPU memory moved to host memory by slice swap \\([\\d.]+ GB/s\\)\n$`));
    expect((await h.task(id)).state).toBe('suspended');
    expect(before - (deviceBytes(ckpt, pid ?? -1) ?? 0)).toBe(16 * MiB); // the swapped allocation's memory is free
    expect(await stateBecomes(pid ?? -1, 'T')).toBe('T');

    const r = await h.run(['resume', '--json', id]);
    expect(r.stderr).toBe('');
    const [resumed] = JSON.parse(r.stdout) as { state: string; path: string; gbps: number | null; swapRefused: string | null }[];
    expect(resumed).toMatchObject({ state: 'running', path: 'swap', swapRefused: null });
    expect(resumed?.gbps).toBeGreaterThan(0);
    expect(deviceBytes(ckpt, pid ?? -1)).toBe(before);
    const done = await h.waitFor(id, undefined, 30_000);
    expect(done.exitCode).toBe(0);
    expect(readFileSync(task.stdoutPath, 'utf8')).toMatch(/^result ok sum=[0-9a-f]+$/m);
    const all = await h.client.json<{ type: string; taskId: string | null; data: Record<string, unknown> }[]>('GET', '/v1/events?since=0&limit=10000');
    const suspended = all.find((e) => e.taskId === id && e.type === 'task.suspended');
    expect(suspended?.data).toMatchObject({ path: 'swap', swappedBytes: 16 * MiB });
    expect(typeof suspended?.data['gbps']).toBe('number');
  }, 60_000);

  it('falls back to the checkpoint API for a task the library cannot swap, and says why', async () => {
    const id = await h.detach(['--mem', '8Gi', '-e', `GPUSHARE_FAKE_CUDA=${fake}`, '--', TRAIN, '60', '40', '1', '6']);
    const task = await h.task(id);
    await waitForOutput(task, 'ready');
    const s = await h.run(['suspend', '--json', id]);
    const [out] = JSON.parse(s.stdout) as { state: string; path: string; swapRefused: string | null }[];
    expect(out).toMatchObject({ state: 'suspended', path: 'checkpoint' });
    expect(out?.swapRefused).toBe('the task has no swappable GPU memory');
    const r = await h.run(['resume', '--json', id]);
    expect((JSON.parse(r.stdout) as { path: string }[])[0]).toMatchObject({ path: 'checkpoint' });
    const done = await h.waitFor(id, undefined, 30_000);
    expect(done.exitCode).toBe(0);
    expect(readFileSync(task.stdoutPath, 'utf8')).toMatch(/^result ok/m);
  }, 60_000);
});
