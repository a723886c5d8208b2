import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { QuietQueue } from './quiet-queue.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('QuietQueue', () => {
  it('runs a job once no call has come for quietMs, each call moving that moment; jobs in order', () => {
    const q = new QuietQueue(5, 100, () => Date.now());
    const ran: string[] = [];
    q.add(() => ran.push('a'));
    q.add(() => ran.push('b'));
    vi.advanceTimersByTime(4);
    q.busy(); // a call: wait 5 ms again
    vi.advanceTimersByTime(4);
    expect(ran).toEqual([]);
    expect(q.pending()).toBe(2);
    vi.advanceTimersByTime(1);
    expect(ran).toEqual(['a', 'b']);
    expect(q.pending()).toBe(0);
    q.busy(); // nothing queued: nothing armed
    expect(vi.getTimerCount()).toBe(0);
  });

  it('runs the jobs once the oldest has waited maxWaitMs, however busy the calls', () => {
    const q = new QuietQueue(5, 20, () => Date.now());
    const ran: number[] = [];
    q.add(() => ran.push(Date.now()));
    const start = Date.now();
    for (let i = 0; i < 6; i++) { // a call every 3 ms: never 5 ms of quiet
      vi.advanceTimersByTime(3);
      q.busy();
    }
    expect(ran).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(ran).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(ran).toEqual([start + 20]);
  });

  it('flush runs what waits now; dispose drops it and leaves no timer', () => {
    const q = new QuietQueue(5, 100);
    const ran: string[] = [];
    q.add(() => ran.push('a'));
    q.flush();
    expect(ran).toEqual(['a']);
    expect(vi.getTimerCount()).toBe(0);
    q.add(() => ran.push('b'));
    q.dispose();
    vi.advanceTimersByTime(1000);
    expect(ran).toEqual(['a']);
    expect(vi.getTimerCount()).toBe(0);
  });
});
