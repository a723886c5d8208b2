import { describe, expect, it } from 'vitest';
import type { AlertEvent } from '../../contract/monitor.js';
import { newFaults } from './faults.js';
import { gpuSample, sample } from './samples.case.js';
import { isSilenced, matches } from './silences.js';

describe('newFaults', () => {
  const at = (t: number, over: Parameters<typeof gpuSample>[0]) => sample(t, { gpus: [gpuSample(over), gpuSample({ index: 1, uuid: 'GPU-bbbb' })] });

  it('reports a rise of the XID or uncorrectable ECC count, with the last XID code', () => {
    expect(newFaults(at(0, { xidErrors: 1 }), at(1, { xidErrors: 2, lastXid: 79 }))).toEqual([{ uuid: 'GPU-aaaa', kind: 'xid', code: 79, at: 1 }]);
    expect(newFaults(at(0, {}), at(1, { eccUncorrectedErrors: 1 }))).toEqual([{ uuid: 'GPU-aaaa', kind: 'ecc', code: null, at: 1 }]);
  });

  it('is quiet on the first sample, on a reset, on unknown counters and on unchanged ones', () => {
    expect(newFaults(null, at(0, { xidErrors: 5 }))).toEqual([]);
    expect(newFaults(at(0, { xidErrors: 5 }), at(1, { xidErrors: 0 }))).toEqual([]);
    expect(newFaults(at(0, { xidErrors: null }), at(1, { xidErrors: 3 }))).toEqual([]);
    expect(newFaults(at(0, { eccUncorrectedErrors: 2 }), at(1, { eccUncorrectedErrors: 2 }))).toEqual([]);
  });
});

describe('silences', () => {
  const alert = { id: 'x', rule: 'gpu-memory-warning', severity: 'warning', state: 'firing', subject: { gpu: 0, uuid: 'GPU-aaaa', task: 't1', tenant: 'team-a' }, value: 1, threshold: 1, startedAt: 0, resolvedAt: null, summary: '', silenced: false } satisfies AlertEvent;

  it('matches when every matcher equals the field', () => {
    expect(matches([{ name: 'rule', value: 'gpu-memory-warning' }, { name: 'gpu', value: '0' }], alert)).toBe(true);
    expect(matches([{ name: 'rule', value: 'gpu-memory-warning' }, { name: 'tenant', value: 'team-b' }], alert)).toBe(false);
    expect(matches([{ name: 'task', value: 't1' }], { ...alert, subject: { gpu: 0 } })).toBe(false);
  });

  it('counts only silences not yet ended', () => {
    const s = { matchers: [{ name: 'severity' as const, value: 'warning' }], until: 100 };
    expect(isSilenced([s], alert, 99)).toBe(true);
    expect(isSilenced([s], alert, 100)).toBe(false);
  });
});
