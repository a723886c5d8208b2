/**
 * The overlapped hand-over of time-sharing (issue 22 item 4; native/shim/SWAP.md "Hand-over"):
 * the real daemon with --swap and an overcommit section on the simulated backend, fake-phases
 * on the fake CUDA driver under the real libgpushare, the fake's card SHARED by the tasks
 * (sharedMemory: one 72 MiB card). Two tasks of 36 MiB cannot both be on the card, so at each
 * turn the outgoing slice's swap-out and the incoming one's swap-in run at once: the swap-in's
 * allocations wait on the card for the swap-out's releases (the driver refuses them until
 * then), not on the planner. Both tasks end with every byte intact and no out-of-memory, and
 * each hand-over's event says what its sides took.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';
import { Harness, waitForOutput } from './harness.js';
import { MiB, PHASES, type Event } from './overcommit-helpers.js';

describe('time-sharing hands the card over with the two swaps overlapped', () => {
  const h = new Harness();
  let fake = '';
  const events = async (id: string): Promise<Event[]> => (await h.client.json<Event[]>('GET', '/v1/events?since=0&limit=10000')).filter((e) => e.taskId === id);
  beforeAll(async () => {
    expect(existsSync(PHASES), `${PHASES} is built by npm run build`).toBe(true);
    const config = join(h.dir, 'overcommit-handover.json');
    writeFileSync(config, JSON.stringify({ swap: true, overcommit: { gpus: { '0': 1.5 }, idleSeconds: 5, timeshareQuantumSeconds: 2, maxWaitSeconds: 4, headroom: '81495Mi' } }));
    await h.start(['--config', config], { GPUSHARE_CUDA_PATH: `${REPO_ROOT}build/native/fake/libcuda.so.1` });
    const gpus = await h.client.json<{ gpus: { uuid: string }[] }>('GET', '/v1/gpus');
    const dir = join(h.dir, 'card');
    mkdirSync(dir, { recursive: true });
    fake = JSON.stringify({ contextBytes: 2 * MiB, busyDir: dir, sharedMemory: true, devices: gpus.gpus.map((g) => ({ uuid: g.uuid, name: 'NVIDIA H100 80GB HBM3', totalMemory: 72 * MiB })) });
  });
  afterAll(async () => {
    await h.cleanup();
  });

  it('alternates two slices the card cannot hold at once, each turn a hand-over, bytes intact', async () => {
    const first = await h.detach(['--mem', '64Mi', '-e', `GPUSHARE_FAKE_CUDA=${fake}`, '--', PHASES, '36', '1', 'work:9000']);
    await waitForOutput(await h.task(first), 'ready');
    const second = await h.detach(['--mem', '64Mi', '-e', `GPUSHARE_FAKE_CUDA=${fake}`, '--', PHASES, '36', '2', 'work:9000']);
    const ids = [first, second];
    const done = await Promise.all(ids.map((id) => h.waitFor(id, undefined, 60_000)));
    for (const t of done) {
      const err = existsSync(t.stderrPath) ? readFileSync(t.stderrPath, 'utf8') : '';
      expect(err).not.toMatch(/failed: CUresult 2/);
      expect(t.exitCode).toBe(0);
      expect(readFileSync(t.stdoutPath, 'utf8')).toMatch(/^result ok$/m);
    }
    const all = await Promise.all(ids.map(events));
    for (const evs of all) expect(evs.filter((e) => e.type === 'task.swap-in-refused' || e.type === 'task.swap-out-refused')).toEqual([]);
    // The turns after the first (whose room the second's allocation asked for) are hand-overs:
    // the swap-in began with the swap-out of the other slice, and says what each side took.
    const handovers = all.flat().filter((e) => e.type === 'task.swapped-in' && e.data['handover'] !== undefined);
    expect(handovers.length).toBeGreaterThanOrEqual(1);
    for (const e of handovers) {
      const other = ids.find((id) => id !== e.taskId);
      const ho = e.data['handover'] as Record<string, unknown>;
      expect(ho['from']).toEqual([other]);
      const [outS = NaN, inS = NaN, waitS = NaN, wallS = NaN] = ['outSeconds', 'inSeconds', 'waitSeconds', 'wallSeconds'].map((k) => Number(ho[k]));
      expect(outS).toBeGreaterThan(0);
      expect(inS).toBeGreaterThan(0);
      expect(waitS).toBeGreaterThanOrEqual(0);
      expect(waitS).toBeLessThanOrEqual(inS);
      // Overlapped: the wall time is the longer side's (give or take the daemon's own), not their sum.
      expect(wallS).toBeGreaterThanOrEqual(Math.max(inS, Number(ho['outWallSeconds'])) - 0.01);
      expect(e.data['swappedBytes']).toBe(36 * MiB);
      expect(typeof e.data['lostShare']).toBe('number');
      // The other's swap-out (for this one) is recorded before this swap-in.
      const out = all.flat().filter((x) => x.taskId === other && x.type === 'task.swapped-out' && x.data['for'] === e.taskId && x.seq < e.seq);
      expect(out.length).toBeGreaterThanOrEqual(1);
    }
    // In at least one, the swap-in really waited on the card for the other's releases.
    expect(handovers.some((e) => Number((e.data['handover'] as Record<string, unknown>)['waitSeconds']) > 0)).toBe(true);
    const metrics = await new Promise<string>((resolve, reject) => {
      const req = request({ socketPath: h.socket, path: '/metrics', method: 'GET' }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
      req.end();
    });
    expect(metrics).toMatch(/^gpushare_overcommit_handover_seconds_count [1-9]/m);
  }, 90_000);
});
