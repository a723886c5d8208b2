import { describe, expect, it } from 'vitest';
import { describeBackendConformance } from '../backend.case.js';
import { SimulatedBackend } from './backend.js';
import { parseFleetSpec } from './spec.js';

function simulated(spec: string, clock = () => 1_700_000_000_000): SimulatedBackend {
  const parsed = parseFleetSpec(spec);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return new SimulatedBackend({ label: spec, gpus: parsed.value, clock });
}

describeBackendConformance('simulated', () => ({ backend: simulated('2xH100-80GB,1xA100-40GB:mig=3g.20gb+1g.5gb,4xT4'), expectedCount: 7 }));

describe('simulated fleet', () => {
  it('returns exactly the described fleet', () => {
    const gpus = simulated('2xH100-80GB,1xA100-40GB').gpus();
    expect(gpus.map((g) => [g.model, g.name, g.memoryTotalBytes / 2 ** 20, g.multiprocessorCount])).toEqual([
      ['H100-80GB', 'NVIDIA H100 80GB HBM3', 81559, 132],
      ['H100-80GB', 'NVIDIA H100 80GB HBM3', 81559, 132],
      ['A100-40GB', 'NVIDIA A100-SXM4-40GB', 40960, 108],
    ]);
    expect(gpus[0]!.topology).toEqual([{ gpu: 1, level: 'NV', nvlinks: 18 }, { gpu: 2, level: 'NODE', nvlinks: 0 }]);
  });

  it('lays out MIG instances', () => {
    const [gpu] = simulated('A100-40GB:mig=3g.20gb+2g.10gb+1g.5gb').gpus();
    expect(gpu!.migMode).toBe('enabled');
    expect(gpu!.migDevices.map((m) => [m.profile, m.gpuInstanceId, m.computeInstanceId])).toEqual([['3g.20gb', 1, 0], ['2g.10gb', 2, 0], ['1g.5gb', 3, 0]]);
  });

  it('is deterministic for a given clock and varies with time', () => {
    const a = simulated('H100', () => 1_000_000).gpus();
    const b = simulated('H100', () => 1_000_000).gpus();
    expect(a).toEqual(b);
    const later = Array.from({ length: 60 }, (_, i) => simulated('H100', () => 1_000_000 + i * 5_000).gpus()[0]!.powerDrawWatts);
    expect(new Set(later).size).toBeGreaterThan(1);
  });

  it('splits larger machines across two NUMA nodes', () => {
    expect(simulated('8xH100-80GB').gpus().map((g) => g.numaNode)).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
  });

  it.each([
    ['', /empty/],
    ['2xB900', /unknown GPU model "B900"; known models: H100-80GB/],
    ['0xH100', /count of 0/],
    ['two H100s', /not a fleet item/],
    ['T4:mig=1g.5gb', /does not support MIG/],
    ['A100-40GB:mig=4g.20gb+4g.20gb', /8 compute slices/],
    ['A100-40GB:mig=7g', /not a MIG profile/],
    ['2000xT4', /at most 1024/],
  ])('rejects spec %j', (spec, message) => {
    const r = parseFleetSpec(spec);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues.map((i) => i.message).join('; ')).toMatch(message);
  });

  it('accepts a bare family name when unambiguous, and asks when not', () => {
    expect(parseFleetSpec('h100').ok).toBe(true);
    const r = parseFleetSpec('A100');
    expect(r.ok ? '' : r.issues[0]!.message).toMatch(/A100-80GB, A100-40GB/);
  });
});
