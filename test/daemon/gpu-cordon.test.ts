/**
 * `gpushare gpu cordon|uncordon|ls` against a real daemon: a cordon keeps new work off the GPU
 * and is the reason a queued task gives, it survives a daemon restart, and uncordon lets the
 * task start; `gpushare gpus` shows it under the GPU.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Harness } from './harness.js';

const h = new Harness();

beforeAll(async () => {
  await h.start();
});
afterAll(async () => {
  await h.cleanup();
});

describe('gpushare gpu cordon / uncordon', () => {
  it('holds queued work with the cordon as its reason across a restart, and lets it start on uncordon', async () => {
    const cordon = await h.run(['gpu', 'cordon', '0', '--note', 'fan']);
    expect(cordon.stderr).toBe('');
    expect(cordon.stdout).toMatch(/^GPU 0 \(GPU-[\w-]+\): cordoned by \S+: fan\n$/);

    const id = await h.detach(['--mem', '1Gi', '--', 'sleep', '30']);
    const waiting = await h.waitFor(id, (t) => t.waiting !== null);
    expect(waiting.state).toBe('queued');
    expect(waiting.waiting).toMatchObject({ kind: 'noRoom', gpus: [{ gpu: 0, reason: 'gpuCordoned', text: expect.stringMatching(/^GPU 0 cordoned by \S+: fan$/) as unknown }] });
    expect((await h.run(['ps'])).stdout).toMatch(new RegExp(`^${id}\\s+queued\\b.*\\sGPU 0 cordoned\\s+sleep 30$`, 'm'));
    expect((await h.run(['gpus'])).stdout).toMatch(/^\s+no new work: cordoned by \S+: fan$/m);

    await h.stop();
    await h.start();
    const ls = JSON.parse((await h.run(['gpu', 'ls', '-o', 'json'])).stdout) as { index: number; cordoned: boolean; cordon: { note: string } | null }[];
    expect(ls).toMatchObject([{ index: 0, cordoned: true, cordon: { note: 'fan' } }]);
    expect((await h.run(['gpu', 'ls'])).stdout).toMatch(/^0\s+H100-80GB\s+GPU-\S+\s+cordoned by \S+: fan\s+\d{4}-\d\d-\d\dT[\d:]+Z$/m);
    expect((await h.task(id)).state).toBe('queued');

    const uncordon = await h.run(['gpu', 'uncordon', '0']);
    expect(uncordon.stdout).toMatch(/^GPU 0 \(GPU-[\w-]+\): takes new work\n$/);
    await h.waitFor(id, (t) => t.state === 'running');
    const audit = (await h.run(['audit', '-o', 'json'])).stdout;
    expect((JSON.parse(audit) as { action: string }[]).map((a) => a.action).filter((a) => a.startsWith('gpu.'))).toEqual(['gpu.cordon', 'gpu.uncordon']);
  });

  it('says clearly which GPU it cannot find, and exits non-zero', async () => {
    const missing = await h.run(['gpu', 'cordon', '3']);
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toMatch(/no GPU 3 on this machine; it has 0 \(GPU-/);
    const bad = await h.run(['gpu', 'uncordon', 'first']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/"first" is neither a GPU index/);
  });
});
