import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { firstFit, freeSms, partitionRange, partitionSize, smLayout, type SmLayout } from './smpartition.js';

const HOPPER: SmLayout = { total: 132, min: 8, step: 8, groupable: 128 };
/** What gpushare-smprobe said of the lent H200 (2026-12-01): 15 groups of 8. */
const H200: SmLayout = { total: 132, min: 8, step: 8, groupable: 120 };
const C_ROUND = fileURLToPath(new URL('../../build/native/shim/tests/partition_round', import.meta.url));

/** [percent, total, min, step, SMs]: partition.c's documented sizes, then edges of the rule. */
const TABLE: readonly (readonly [number, number, number, number, number])[] = [
  [10, 132, 8, 8, 16],
  [25, 132, 8, 8, 32],
  [50, 132, 8, 8, 64], // 66 wanted: a tie between 64 and 72 goes down, so two halves fit
  [75, 132, 8, 8, 96],
  [90, 132, 8, 8, 120],
  [1, 132, 8, 8, 8], // below the smallest group: the smallest group
  [99, 132, 8, 8, 128], // 130.7: 136 would not fit
  [100, 132, 8, 8, 128], // the rule alone at 100%: a tie of 128 and 136 goes down (partitionRange makes 100% whole)
  [33, 132, 8, 8, 40],
  [30, 108, 4, 2, 32], // an Ampere-like split (partition_test's TWO): groups of 4, steps of 2
  [3, 108, 4, 2, 4],
  [50, 108, 4, 2, 54],
  [37, 114, 8, 8, 40],
  [12, 132, 8, 0, 16], // step 0 is treated as 1
];

describe('partitionSize (the rule of gs_partition_round)', () => {
  it.each(TABLE)('%d%% of %d SMs (groups of %d, step %d) is %d SMs', (percent, total, min, step, sms) => {
    expect(partitionSize(percent, total, min, step)).toBe(sms);
  });

  it('agrees with the C function itself on the table and on every whole percent of common SM counts', () => {
    if (!existsSync(C_ROUND)) throw new Error(`${C_ROUND} is missing: run \`npm run build:native\``);
    const cases: (readonly [number, number, number, number])[] = TABLE.map(([p, t, m, s]) => [p, t, m, s] as const);
    for (const [total, min, step] of [[132, 8, 8], [114, 8, 8], [78, 8, 8], [148, 8, 8], [108, 4, 2], [16, 8, 8]] as const) {
      for (let p = 1; p <= 100; p++) cases.push([p, total, min, step]);
    }
    const r = spawnSync(C_ROUND, { input: cases.map((c) => c.join(' ')).join('\n') + '\n', encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const fromC = r.stdout.trim().split('\n').map(Number);
    expect(fromC).toHaveLength(cases.length);
    const fromTs = cases.map(([p, t, m, s]) => partitionSize(p, t, m, s));
    const differ = cases.filter((_, i) => fromC[i] !== fromTs[i]).map((c, i) => `${c.join(' ')}: C ${fromC[i]}, TS ${fromTs[i]}`);
    expect(differ).toEqual([]);
    // The table's expected sizes are what C computes too, not only what TS computes.
    expect(fromC.slice(0, TABLE.length)).toEqual(TABLE.map((t) => t[4]));
  });

  it('takes the whole GPU at 100% (libgpushare makes no partition there)', () => {
    expect(partitionRange(HOPPER, 100)).toBe(132);
    expect(partitionRange(HOPPER, 50)).toBe(64);
  });
});

describe('smLayout', () => {
  const gpu = (name: string, computeCapability: string | null, multiprocessorCount: number | null) => ({ name, computeCapability, multiprocessorCount });

  it('uses the SM count the backend reports, in groups of 8 on Hopper and newer', () => {
    expect(smLayout(gpu('NVIDIA H100 80GB HBM3', '9.0', 132))).toEqual({ ok: true, value: HOPPER });
    expect(smLayout(gpu('NVIDIA B200', '10.0', 148))).toEqual({ ok: true, value: { total: 148, min: 8, step: 8, groupable: 144 } });
  });

  it('takes the driver\'s groups when the probe gave them (a groupable count cut to whole groups and the GPU)', () => {
    expect(smLayout(gpu('NVIDIA H200', '9.0', 132), { min: 8, step: 8, groupable: 120 })).toEqual({ ok: true, value: H200 });
    expect(smLayout(gpu('NVIDIA H200', '9.0', 132), { min: 8, step: 8, groupable: 124 })).toMatchObject({ ok: true, value: { groupable: 120 } });
    expect(smLayout(gpu('NVIDIA H200', '9.0', 132), { min: 8, step: 8, groupable: 200 })).toMatchObject({ ok: true, value: { groupable: 128 } });
  });

  it('falls back to the model table when the driver does not report the SM count', () => {
    expect(smLayout(gpu('NVIDIA H200', '9.0', null))).toMatchObject({ ok: true, value: { total: 132 } });
    expect(smLayout(gpu('NVIDIA H100 PCIe', '9.0', null))).toMatchObject({ ok: true, value: { total: 114 } });
  });

  it.each([
    [gpu('NVIDIA A100-SXM4-80GB', '8.0', 108), /compute capability 9\.0 \(Hopper\) or newer; NVIDIA A100-SXM4-80GB is 8\.0/],
    [gpu('Mystery GPU', null, 100), /unknown compute capability/],
    [gpu('NVIDIA Future X1', '12.0', null), /number of SMs of NVIDIA Future X1 is unknown/],
  ])('refuses %o', (g, message) => {
    const r = smLayout(g);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.issues[0]?.message).toMatch(message);
    expect(!r.ok && r.issues[0]?.code).toBe('unsupported');
  });
});

describe('firstFit', () => {
  it('places partitions side by side from SM 0, on group boundaries', () => {
    const a = firstFit(HOPPER, [], 64);
    expect(a).toEqual({ offset: 0, count: 64 });
    const b = firstFit(HOPPER, [a!], 64);
    expect(b).toEqual({ offset: 64, count: 64 });
    // 4 SMs are left (128-131): less than a group.
    expect(firstFit(HOPPER, [a!, b!], 8)).toBeNull();
  });

  it('reuses a released range first (first fit), wherever it is', () => {
    const taken = [{ offset: 0, count: 32 }, { offset: 64, count: 32 }];
    expect(firstFit(HOPPER, taken, 32)).toEqual({ offset: 32, count: 32 });
    expect(firstFit(HOPPER, taken, 16)).toEqual({ offset: 32, count: 16 });
    expect(firstFit(HOPPER, taken, 40)).toBeNull(); // 32 + 36 free, but not 40 in a row
    expect(firstFit(HOPPER, [{ offset: 0, count: 32 }], 40)).toEqual({ offset: 32, count: 40 });
  });

  it('refuses a range when the free SMs are enough in total but fragmented', () => {
    const taken = [{ offset: 32, count: 32 }, { offset: 96, count: 16 }];
    expect(freeSms(HOPPER, taken)).toBe(80); // of the 128 SMs in whole groups
    expect(firstFit(HOPPER, taken, 48)).toBeNull();
    expect(firstFit(HOPPER, taken, 32)).toEqual({ offset: 0, count: 32 });
  });

  it('keeps partitions inside the groupable SMs: two halves of an H200 do not both fit', () => {
    const a = firstFit(H200, [], 64);
    expect(a).toEqual({ offset: 0, count: 64 });
    expect(firstFit(H200, [a!], 64)).toBeNull(); // 64-127 would pass SM 120, which no group covers
    expect(firstFit(H200, [a!], 56)).toEqual({ offset: 64, count: 56 });
    expect(freeSms(H200, [a!])).toBe(56);
    expect(firstFit(H200, [], 128)).toBeNull(); // 97% is 128 SMs: more than the driver groups
    expect(firstFit(H200, [], 132)).toEqual({ offset: 0, count: 132 }); // the whole GPU is no partition
  });

  it('gives the whole GPU only when nothing else is on it', () => {
    expect(firstFit(HOPPER, [], 132)).toEqual({ offset: 0, count: 132 });
    expect(firstFit(HOPPER, [{ offset: 64, count: 8 }], 132)).toBeNull();
  });

  it('refuses sizes that are not whole groups, zero, or more than the GPU', () => {
    expect(firstFit(HOPPER, [], 12)).toBeNull();
    expect(firstFit(HOPPER, [], 0)).toBeNull();
    expect(firstFit(HOPPER, [], 136)).toBeNull();
  });

  it('never overlaps: random sequences of allocations and releases keep ranges disjoint', () => {
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const held: { offset: number; count: number }[] = [];
    for (let i = 0; i < 2000; i++) {
      if (held.length > 0 && rand(3) === 0) {
        held.splice(rand(held.length), 1);
        continue;
      }
      const size = partitionRange(HOPPER, 1 + rand(60));
      const r = firstFit(HOPPER, held, size);
      if (r === null) {
        // Refused only when no aligned run of that size is free.
        for (let o = 0; o + size <= 132; o += 8) expect(held.some((h) => o < h.offset + h.count && h.offset < o + size)).toBe(true);
        continue;
      }
      expect(r.offset % 8).toBe(0);
      expect(r.offset + r.count).toBeLessThanOrEqual(132);
      for (const h of held) expect(r.offset + r.count <= h.offset || h.offset + h.count <= r.offset).toBe(true);
      held.push(r);
    }
  });
});
