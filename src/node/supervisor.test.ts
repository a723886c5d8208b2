import { afterAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Supervisor } from './supervisor.js';
import { withRegionFixture } from '../../test/helpers/region-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'gpushare-supervisor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the supervisor's timed round of region samples", () => {
  it('samples every watched task, a chunk per turn of the event loop, and skips a task that ended meanwhile', async () => {
    const region = join(dir, 'region');
    await withRegionFixture(region, async () => {
      vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setImmediate', 'clearImmediate'] });
      const ended: string[] = [];
      const supervisor = new Supervisor({ onEnd: (id) => ended.push(id), sampleMs: 1000, pollMs: 60_000, sampleChunk: 2 });
      try {
        const ids = ['t1', 't2', 't3', 't4', 't5'];
        ids.forEach((id, i) => supervisor.watchSpawned(id, 1000 + i, 1, join(dir, `status-${id}`), region));
        const sampled = (): string[] => ids.filter((id) => supervisor.usage(id) !== null);
        expect(sampled()).toEqual([]);
        vi.advanceTimersByTime(1000); // the tick: its first chunk at once
        expect(sampled()).toHaveLength(2);
        // One task ends before its turn (its end samples it once more, then it is no longer watched).
        const left = ids.find((id) => !sampled().includes(id))!;
        supervisor.exited(1000 + ids.indexOf(left), 1, { code: 0, signal: null });
        expect(ended).toEqual([left]);
        vi.advanceTimersToNextTimer(); // the next turn's chunk
        expect(sampled()).toHaveLength(4);
        vi.advanceTimersToNextTimer();
        expect(sampled()).toHaveLength(4); // all four still watched: the ended one is gone
        expect(ids.filter((id) => id !== left).every((id) => supervisor.usage(id)!.length > 0)).toBe(true);
      } finally {
        supervisor.close();
        vi.useRealTimers();
      }
    });
  });

  it('sampleNow reads every task at once, and a round under way then has nothing left to do', async () => {
    const region = join(dir, 'region-now');
    await withRegionFixture(region, async () => {
      vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setImmediate', 'clearImmediate'] });
      const supervisor = new Supervisor({ onEnd: () => {}, sampleMs: 1000, pollMs: 60_000, sampleChunk: 1 });
      try {
        const ids = ['a', 'b', 'c'];
        ids.forEach((id, i) => supervisor.watchSpawned(id, 2000 + i, 1, join(dir, `status-${id}`), region));
        vi.advanceTimersByTime(1000);
        expect(ids.filter((id) => supervisor.usage(id) !== null)).toHaveLength(1);
        supervisor.sampleNow();
        expect(ids.every((id) => supervisor.usage(id) !== null)).toBe(true);
        expect(vi.getTimerCount()).toBeGreaterThan(0);
        vi.advanceTimersToNextTimer(); // the round's pending turn finds it was done
        vi.advanceTimersByTime(1000); // and the next tick starts a new round
        expect(ids.every((id) => supervisor.usage(id) !== null)).toBe(true);
      } finally {
        supervisor.close();
        vi.useRealTimers();
      }
    });
  });
});
