import { describe, expect, it } from 'vitest';
import { openBackend } from '../gpu/open.js';
import { REPO_ROOT } from '../../test/helpers/cli.js';
import { parseProbe, probeSmGroups, readSmGroups } from './smgroups.js';

const PROBE = `${REPO_ROOT}build/native/gpushare-smprobe`;
const FAKE = `${REPO_ROOT}build/native/fake/libcuda.so.1`;

describe('gpushare-smprobe on the fake driver', () => {
  it('reports each GPU\'s groups by UUID, and why a GPU it cannot split is left out', async () => {
    const config = { devices: [{ multiprocessorCount: 132, computeCapability: [9, 0], smGroupable: 120 }, { multiprocessorCount: 108, computeCapability: [8, 0] }, { multiprocessorCount: 148, computeCapability: [10, 0] }] };
    const r = await probeSmGroups(PROBE, { GPUSHARE_CUDA_PATH: FAKE, GPUSHARE_FAKE_CUDA: JSON.stringify(config) });
    expect([...r.groups]).toEqual([
      ['GPU-fa4e0000-0000-4000-8000-000000000000', { min: 8, step: 8, groupable: 120 }],
      ['GPU-fa4e0000-0000-4000-8000-000000000002', { min: 8, step: 8, groupable: 144 }],
    ]);
    expect(r.problems).toEqual(['CUDA device 1 (GPU-fa4e0000-0000-4000-8000-000000000001): cuDeviceGetDevResource failed with CUresult 801']);
  });

  it('says so when there is no driver or no probe, and describes nothing', async () => {
    const none = await probeSmGroups(PROBE, { GPUSHARE_CUDA_PATH: '/nonexistent/libcuda.so.1' });
    expect(none).toEqual({ groups: new Map(), problems: ['cannot open the CUDA driver (dlopen failed)'] });
    const missing = await probeSmGroups('/nonexistent/gpushare-smprobe', {});
    expect(missing.groups.size).toBe(0);
    expect(missing.problems[0]).toMatch(/gpushare-smprobe is missing/);
  });
});

describe('parseProbe', () => {
  it.each([
    ['not json', /printed no JSON/],
    ['{"devices": [{"index": "zero"}]}', /unexpected JSON/],
  ])('refuses %s', (text, why) => {
    const r = parseProbe(text);
    expect(r.groups.size).toBe(0);
    expect(r.problems[0]).toMatch(why);
  });
});

describe('readSmGroups', () => {
  it('takes simulated Hopper GPUs\' groups from their model, and skips older GPUs', async () => {
    const { backend } = openBackend({ backend: 'simulated', simulate: '1xH200-141GB,1xA100-80GB' });
    try {
      const r = await readSmGroups(backend, '/nonexistent', {});
      const h200 = backend.gpus().find((g) => g.name === 'NVIDIA H200')!;
      expect([...r.groups]).toEqual([[h200.uuid, { min: 8, step: 8, groupable: 120 }]]);
      expect(r.problems).toEqual([]);
    } finally {
      backend.close();
    }
  });
});
