import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../test/helpers/cli.js';
import { CHECKPOINT_ERROR_CODES, openCheckpointApi, type CheckpointApi } from '../gpu/checkpoint.js';
import { cudaStates, resumeGroup, suspendGroup } from './suspend.js';

/**
 * The group operations against fake-train on the fake driver, each in its own process group as
 * the daemon starts tasks: they converge from any mix of per-process states (what a restarted
 * daemon relies on) and undo themselves when the driver fails a step.
 */
const FAKE = `${REPO_ROOT}build/native/fake/libcuda.so.1`;
const TRAIN = `${REPO_ROOT}build/native/fake/fake-train`;
const dir = mkdtempSync(join(tmpdir(), 'gpushare-group-'));
let api: CheckpointApi;
const started: ChildProcess[] = [];

beforeAll(() => {
  expect(existsSync(TRAIN)).toBe(true);
  process.env['GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR'] = dir;
  const opened = openCheckpointApi(FAKE);
  if (!opened.ok) throw new Error(opened.error.message);
  api = opened.value;
});
afterAll(() => {
  for (const c of started) if (c.pid !== undefined) try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
  api.close();
  delete process.env['GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR'];
  rmSync(dir, { recursive: true, force: true });
});

async function train(config: Record<string, unknown> = {}): Promise<{ pid: number; out: () => string; done: Promise<number | null> }> {
  const child = spawn(TRAIN, ['60', '20', '8', '4'], { detached: true, env: { ...process.env, GPUSHARE_FAKE_CUDA: JSON.stringify({ contextBytes: 2 ** 20, ...config }) }, stdio: ['ignore', 'pipe', 'inherit'] });
  started.push(child);
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  const done = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  while (!out.includes('ready')) await new Promise((r) => setTimeout(r, 10));
  return { pid: child.pid ?? -1, out: () => out, done };
}

function procState(pid: number): string | undefined {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return text.slice(text.lastIndexOf(')') + 2).split(' ')[0];
}

async function stopped(pid: number): Promise<boolean> {
  for (let i = 0; i < 500 && procState(pid) !== 'T'; i++) await new Promise((r) => setTimeout(r, 10));
  return procState(pid) === 'T';
}

describe('suspendGroup / resumeGroup (fake driver)', () => {
  it('finishes a suspension left halfway (one process locked) and a resumption left halfway (restored, still locked)', async () => {
    const t = await train();
    expect((await api.lock(t.pid, 5000)).ok).toBe(true); // as if a daemon died right after lock
    const s = await suspendGroup(api, t.pid, 5000);
    expect(s).toEqual({ ok: true, pids: [t.pid] });
    expect(await stopped(t.pid)).toBe(true);
    const states = cudaStates(api, t.pid);
    expect(states.ok && [...states.states.values()]).toEqual(['checkpointed']);
    process.kill(-t.pid, 'SIGCONT');
    expect((await api.restore(t.pid)).ok).toBe(true); // as if a daemon died right after restore
    const r = await resumeGroup(api, t.pid, []);
    expect(r).toEqual({ ok: true, pids: [t.pid] });
    expect(api.state(t.pid)).toEqual({ ok: true, value: 'running' });
    expect(await t.done).toBe(0);
    expect(t.out()).toMatch(/^result ok/m);
  }, 30_000);

  it('undoes a suspension whose checkpoint the driver fails: the task runs on, unstopped', async () => {
    const t = await train({ errors: { cuCheckpointProcessCheckpoint: 2 } });
    const s = await suspendGroup(api, t.pid, 5000);
    expect(s.ok).toBe(false);
    if (!s.ok) {
      expect(s.error.code).toBe(CHECKPOINT_ERROR_CODES.outOfMemory);
      expect(s.error.call).toBe('cuCheckpointProcessCheckpoint');
    }
    expect(api.state(t.pid)).toEqual({ ok: true, value: 'running' });
    expect(procState(t.pid)).not.toBe('T');
    expect(await t.done).toBe(0);
    expect(t.out()).toMatch(/^result ok/m);
  }, 30_000);

  it('keeps a task suspended (checkpointed and stopped) when its restore fails', async () => {
    const t = await train({ errors: { cuCheckpointProcessRestore: 2 } });
    expect((await suspendGroup(api, t.pid, 5000)).ok).toBe(true);
    const r = await resumeGroup(api, t.pid, []);
    expect(!r.ok && r.error.code).toBe(CHECKPOINT_ERROR_CODES.outOfMemory);
    expect(api.state(t.pid)).toEqual({ ok: true, value: 'checkpointed' });
    expect(await stopped(t.pid)).toBe(true);
  }, 30_000);

  it('leaves a group without CUDA processes alone (nothing to checkpoint; stopped and continued)', async () => {
    const child = spawn('sleep', ['5'], { detached: true, stdio: 'ignore' });
    started.push(child);
    const pid = child.pid ?? -1;
    expect(await suspendGroup(api, pid, 1000)).toEqual({ ok: true, pids: [] });
    expect(await stopped(pid)).toBe(true);
    expect(await resumeGroup(api, pid, [])).toEqual({ ok: true, pids: [] });
    for (let i = 0; i < 500 && procState(pid) === 'T'; i++) await new Promise((r) => setTimeout(r, 10));
    expect(procState(pid)).not.toBe('T');
  });
});
