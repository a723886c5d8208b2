import { describe, expect, it } from 'vitest';
import { decodeSuspendRequest, decodeSuspension, encodeSuspendRequest, encodeSuspension, isSuspended } from './suspension.js';

describe('suspension annotations', () => {
  it('round-trips both', () => {
    const request = { v: 1 as const, preemptor: 'uid-a', node: 'n1', atMs: 5 };
    expect(decodeSuspendRequest(encodeSuspendRequest(request))).toEqual({ ok: true, value: request });
    const s = { v: 1 as const, state: 'failed' as const, preemptor: 'uid-a', atMs: 6, reason: 'why' };
    expect(decodeSuspension(encodeSuspension(s))).toEqual({ ok: true, value: s });
  });

  it.each([
    ['not JSON', 'suspend', /is not JSON/],
    ['an unknown state', '{"v":1,"state":"paused","preemptor":"u","atMs":1}', /state/],
    ['another version', '{"v":2,"state":"suspended","preemptor":"u","atMs":1}', /^v:/],
    ['an unknown field', '{"v":1,"state":"suspended","preemptor":"u","atMs":1,"pids":[1]}', /Unrecognized key/],
  ])('refuses %s with the annotation named', (_what, text, message) => {
    const r = decodeSuspension(text);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.issues[0]?.field).toBe('gpushare.io/suspended');
      expect(r.issues[0]?.message).toMatch(message);
    }
  });

  it('counts only a well-formed suspended state as suspended', () => {
    expect(isSuspended({ 'gpushare.io/suspended': '{"v":1,"state":"suspended","preemptor":"u","atMs":1}' })).toBe(true);
    expect(isSuspended({ 'gpushare.io/suspended': '{"v":1,"state":"failed","preemptor":"u","atMs":1}' })).toBe(false);
    expect(isSuspended({ 'gpushare.io/suspended': 'yes' })).toBe(false);
    expect(isSuspended(undefined)).toBe(false);
  });
});
