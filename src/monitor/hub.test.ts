import { describe, expect, it } from 'vitest';
import type { MonitorSample } from '../contract/monitor.js';
import { SampleHub } from './hub.js';

const sample = (at: number): MonitorSample => ({ at, hostname: 'h', gpus: [], slices: [], queue: { queued: 0, oldestTask: null, oldestWaitSeconds: null } });

describe('SampleHub', () => {
  it('keeps the newest sample and hands each to every listener, a throwing one included', () => {
    const errors: unknown[] = [];
    const hub = new SampleHub((err) => errors.push(err));
    expect(hub.latest()).toBeNull();
    const seen: number[] = [];
    hub.subscribe(() => {
      throw new Error('disk full');
    });
    const off = hub.subscribe((s) => seen.push(s.at));
    hub.publish(sample(1));
    off();
    hub.publish(sample(2));
    expect(seen).toEqual([1]);
    expect(hub.latest()?.at).toBe(2);
    expect(errors.map((e) => (e as Error).message)).toEqual(['disk full', 'disk full']);
  });
});
