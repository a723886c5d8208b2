import { describe, expect, it } from 'vitest';
import { FAULT_POINTS, parseFaults } from './faults.js';

describe('GPUSHARE_FAULT', () => {
  it.each([
    [undefined, null],
    ['', null],
    ['  ', null],
    ['start.after-spawn', ['start.after-spawn']],
    ['kill.after-signal, resume.after-restore,', ['kill.after-signal', 'resume.after-restore']],
  ])('%j arms %j', (value, points) => {
    const armed = parseFaults(value);
    expect(armed === null ? null : [...armed]).toEqual(points);
  });

  it('refuses an unknown point by name, listing the known ones', () => {
    expect(() => parseFaults('start.after-spawn,start.typo')).toThrow(/unknown fault point start\.typo; known: start\.after-intent, /);
  });

  it('names each point after its operation and step, once', () => {
    expect(new Set(FAULT_POINTS).size).toBe(FAULT_POINTS.length);
    for (const p of FAULT_POINTS) expect(p).toMatch(/^(start|kill|suspend|resume|move)\.after-[a-z]+$/);
  });
});
