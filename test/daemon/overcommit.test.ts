/**
 * Memory overcommit and time-sharing (issue 22 items 3-4): the real daemon with --swap and an
 * overcommit section on the simulated backend, fake-phases on the fake CUDA driver under the
 * real libgpushare. The card is made 64 MiB for the residents by the headroom (the simulated
 * H100's 81559 MiB less 81495 MiB), so a few MiB of fake memory overcommit it: the idle slice is
 * swapped out when the other grows and back in when it launches (bytes intact, the wait within
 * its bound); two active slices that cannot both be resident take turns with the quantum; bad
 * settings are refused.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { Harness, waitForOutput } from './harness.js';
import { MiB, PHASES, type Event } from './overcommit-helpers.js';

function overcommitConfig(dir: string, quantumSeconds: number): string {
  const path = join(dir, `overcommit-${quantumSeconds}.json`);
  writeFileSync(path, JSON.stringify({ swap: true, overcommit: { gpus: { '0': 1.5 }, idleSeconds: 2.5, timeshareQuantumSeconds: quantumSeconds, maxWaitSeconds: 2 * quantumSeconds, headroom: '81495Mi' } }));
  return path;
}

describe('memory overcommit by slice swap', () => {
  const h = new Harness();
  let fake = '';
  const events = async (id: string): Promise<Event[]> => (await h.client.json<Event[]>('GET', '/v1/events?since=0&limit=10000')).filter((e) => e.taskId === id);
  beforeAll(async () => {
    expect(existsSync(PHASES), `${PHASES} is built by npm run build`).toBe(true);
    await h.start(['--config', overcommitConfig(h.dir, 2)], { GPUSHARE_CUDA_PATH: `${REPO_ROOT}build/native/fake/libcuda.so.1` });
    const gpus = await h.client.json<{ gpus: { uuid: string; memoryTotalBytes: number }[] }>('GET', '/v1/gpus');
    fake = JSON.stringify({ contextBytes: 2 * MiB, devices: gpus.gpus.map((g) => ({ uuid: g.uuid, name: 'NVIDIA H100 80GB HBM3' })) });
  });
  afterAll(async () => {
    await h.cleanup();
  });

  it('swaps the idle slice out when the other grows, and back in (bytes intact) when it launches, within the bound', async () => {
    const low = await h.detach(['--priority', 'low', '--mem', '64Mi', '-e', `GPUSHARE_FAKE_CUDA=${fake}`, '--', PHASES, '24', '1', 'work:300', 'idle:5000', 'work:500']);
    const normal = await h.detach(['--mem', '64Mi', '-e', `GPUSHARE_FAKE_CUDA=${fake}`, '--', PHASES, '8', '2', 'idle:1500', 'grow:40', 'work:1000', 'idle:8000']);
    const [lowDone, normalDone] = await Promise.all([h.waitFor(low, undefined, 40_000), h.waitFor(normal, undefined, 40_000)]);
    const lowEvents = await events(low);
    const types = lowEvents.map((e) => e.type);
    expect(lowDone.exitCode).toBe(0);
    expect(normalDone.exitCode).toBe(0);
    expect(readFileSync(lowDone.stdoutPath, 'utf8')).toMatch(/^result ok$/m);
    expect(readFileSync(normalDone.stdoutPath, 'utf8')).toMatch(/^result ok$/m);

    // Out for room while idle, then it launched: it said so, and came in within maxWait (4 s).
    const out = lowEvents.find((e) => e.type === 'task.swapped-out');
    expect(out?.data).toMatchObject({ reason: 'room', for: null, swappedBytes: 24 * MiB });
    expect(types.indexOf('task.wants-in')).toBeGreaterThan(types.indexOf('task.swapped-out'));
    const back = lowEvents.find((e) => e.type === 'task.swapped-in');
    expect(back?.data['swappedBytes']).toBe(24 * MiB);
    expect(back?.data['waitedMs']).toBeLessThan(4000);
    // Room for it was made from the normal task, idle by then.
    const normalEvents = await events(normal);
    const normalOut = normalEvents.find((e) => e.type === 'task.swapped-out');
    expect(normalOut?.data).toMatchObject({ reason: 'idle', for: low });
    // Swapped out before the low one came in (the card never held both).
    expect(normalEvents.find((e) => e.type === 'task.swapped-out')?.seq ?? Infinity).toBeLessThan(lowEvents.find((e) => e.type === 'task.swapped-in')?.seq ?? 0);
  }, 60_000);

  it('time-shares two active slices that cannot both be resident, turn by turn, and says what the turns cost', async () => {
    const ids = await Promise.all([1, 2].map((seed) => h.detach(['--mem', '64Mi', '-e', `GPUSHARE_FAKE_CUDA=${fake}`, '--', PHASES, '36', String(seed), 'work:9000'])));
    await Promise.all(ids.map(async (id) => waitForOutput(await h.task(id), 'ready')));
    const done = await Promise.all(ids.map((id) => h.waitFor(id, undefined, 40_000)));
    for (const t of done) {
      expect(t.exitCode).toBe(0);
      const out = readFileSync(t.stdoutPath, 'utf8');
      expect(out).toMatch(/^result ok$/m);
      expect(Number(/^work (\d+) launches/m.exec(out)?.[1] ?? 0)).toBeGreaterThan(0);
    }
    const turns = await Promise.all(ids.map(async (id) => (await events(id)).filter((e) => e.type === 'task.swapped-out' && e.data['reason'] === 'turn').length));
    // 9 s of work with a 2 s quantum: each gives the GPU up at least once.
    expect(Math.min(...turns)).toBeGreaterThanOrEqual(1);
    const ins = (await Promise.all(ids.map(events))).flat().filter((e) => e.type === 'task.swapped-in' && typeof e.data['lostShare'] === 'number');
    expect(ins.length).toBeGreaterThanOrEqual(1);
    for (const e of ins) expect(e.data['lostShare']).toBeLessThan(1);
    // Each wait for a turn ends within the bound (4 s), give or take a look's delay.
    const waits = (await Promise.all(ids.map(events))).flat().filter((e) => e.type === 'task.swapped-in').map((e) => Number(e.data['waitedMs']));
    expect(Math.max(...waits)).toBeLessThan(5000);
  }, 60_000);

  it('refuses bad settings, saying which', async () => {
    const bad = (args: string[]) => runCli(['serve', '--sandbox', 'off', '--state-dir', join(h.dir, 'bad'), '--listen', join(h.dir, 'bad.sock'), '--backend', 'simulated', '--simulate', '1xH100-80GB', ...args]);
    // Slice swap is on by default: overcommit is refused only where it is turned off.
    expect((bad(['--no-swap', '--overcommit', '1.5'])).stderr).toMatch(/slice swap is off \(--no-swap/);
    expect((bad(['--swap', '--overcommit', '9'])).stderr).toMatch(/--overcommit: "9" is not a ratio from 1 to 4/);
    expect((bad(['--swap', '--overcommit', '1.5', '--timeshare-quantum', 'soon'])).stderr).toMatch(/--timeshare-quantum: "soon" is not a duration/);
    expect((bad(['--swap', '--timeshare-quantum', '30s'])).stderr).toMatch(/give a ratio too/);
    const config = join(h.dir, 'bad-gpu.json');
    writeFileSync(config, JSON.stringify({ swap: true, overcommit: { gpus: { '3': 1.5 } } }));
    expect((bad(['--config', config])).stderr).toMatch(/overcommit\.gpus: no GPU 3 on this machine/);
  }, 60_000);
});
