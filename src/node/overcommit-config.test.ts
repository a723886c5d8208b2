import { describe, expect, it } from 'vitest';
import { checkOvercommitGpus, overcommitConfig, ratioOf } from './overcommit-config.js';

describe('overcommitConfig', () => {
  it('is off without a ratio, or with ratios of 1', () => {
    expect(overcommitConfig(undefined, {}, true)).toBeNull();
    expect(overcommitConfig({ gpus: { '0': 1 } }, {}, true)).toBeNull();
  });

  it('takes one ratio for every GPU, or ratios by index, with the defaults filled in', () => {
    const all = overcommitConfig(undefined, { overcommit: '1.5' }, true);
    expect(ratioOf(all, 0)).toBe(1.5);
    expect(ratioOf(all, 7)).toBe(1.5);
    expect(all?.residency).toEqual({ idleMs: 5000, quantumMs: 30_000, maxWaitMs: 60_000, headroomBytes: 512 * 2 ** 20 });
    const some = overcommitConfig({ gpus: { '1': 2 }, headroom: '1Gi', idleSeconds: 2, timeshareQuantumSeconds: 10 }, { timeshareQuantum: '20s' }, true);
    expect([ratioOf(some, 0), ratioOf(some, 1)]).toEqual([1, 2]);
    expect(some?.residency).toEqual({ idleMs: 2000, quantumMs: 20_000, maxWaitMs: 40_000, headroomBytes: 2 ** 30 });
    expect(ratioOf(null, 0)).toBe(1);
  });

  it('refuses bad settings with the reason', () => {
    expect(() => overcommitConfig(undefined, { overcommit: '1.5' }, false)).toThrow(/slice swap is off \(--no-swap/);
    expect(() => overcommitConfig(undefined, { overcommit: '5' }, true)).toThrow(/not a ratio from 1 to 4/);
    expect(() => overcommitConfig(undefined, { overcommit: 'lots' }, true)).toThrow(/"lots" is not a ratio/);
    expect(() => overcommitConfig(undefined, { overcommit: '2', timeshareQuantum: '30x' }, true)).toThrow(/--timeshare-quantum: "30x" is not a duration/);
    expect(() => overcommitConfig(undefined, { timeshareQuantum: '30s' }, true)).toThrow(/give a ratio too/);
    expect(() => overcommitConfig({ gpus: 2, maxWaitSeconds: 5 }, {}, true)).toThrow(/maxWaitSeconds \(5\) is shorter than the time-sharing quantum \(30 s\)/);
    expect(() => overcommitConfig({ gpus: 2, headroom: 'much' }, {}, true)).toThrow(/overcommit.headroom: "much"/);
  });

  it('names GPU indices the machine does not have', () => {
    const c = overcommitConfig({ gpus: { '0': 1.5, '3': 2 } }, {}, true);
    expect(() => checkOvercommitGpus(c, [0, 1])).toThrow(/no GPU 3 on this machine \(GPUs 0, 1\)/);
    expect(() => checkOvercommitGpus(c, [0, 1, 2, 3])).not.toThrow();
  });
});
