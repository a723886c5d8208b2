/**
 * SwapSessions.pending (swap.ts): which starting slices memory overcommit may count at what they
 * hold rather than their promise. It fails closed (issue 22's review): a process whose maps the
 * daemon cannot read, a process that cannot get a socket (its path too long, or the library said
 * `noswap`) are not pending. A stand-in for /proc and the swap directory.
 */
import { describe, expect, it } from 'vitest';
import type { MappedLibraries } from './proc.js';
import { SwapSessions, socketPathFits, type ProcView } from './swap.js';

const DIR = '/run/gpushare/tasks/t1/swap';
const LIB = { cuda: true, gpushare: true };
const RAW = { cuda: true, gpushare: false };
const NONE = { cuda: false, gpushare: false };

function proc(members: Record<number, MappedLibraries | 'gone' | 'unreadable'>, files: readonly string[] = []): ProcView {
  return {
    members: () => Object.keys(members).map(Number),
    libraries: (pid) => members[pid] ?? 'gone',
    exists: (path) => files.includes(path),
  };
}

describe('SwapSessions.pending', () => {
  it('is pending while every CUDA process runs the library or has its socket', () => {
    expect(SwapSessions.pending(DIR, 10, proc({ 10: NONE }))).toBe(true); // not at the GPU yet
    expect(SwapSessions.pending(DIR, 10, proc({ 10: LIB, 11: NONE }))).toBe(true);
    expect(SwapSessions.pending(DIR, 10, proc({ 10: LIB, 11: RAW }, [`${DIR}/11.sock`]))).toBe(true);
    expect(SwapSessions.pending(DIR, 10, proc({ 10: LIB, 11: 'gone' }))).toBe(true); // ended meanwhile
  });

  it('is not pending with a CUDA process outside the library', () => {
    expect(SwapSessions.pending(DIR, 10, proc({ 10: LIB, 11: RAW }))).toBe(false);
  });

  it('fails closed on maps it cannot read (not root, hidepid, a process that changed its credentials)', () => {
    expect(SwapSessions.pending(DIR, 10, proc({ 10: LIB, 11: 'unreadable' }))).toBe(false);
    expect(SwapSessions.pending(DIR, 10, proc({ 10: 'unreadable' }))).toBe(false);
    // An empty group: a task before its setsid or ending (never one hidden from the daemon), counted at what it holds.
    expect(SwapSessions.pending(DIR, 10, proc({}))).toBe(true);
    expect(SwapSessions.pending(DIR, 10, proc({ 10: 'gone' }))).toBe(true);
    // Its socket is there: the library answers for it, readable maps or not.
    expect(SwapSessions.pending(DIR, 10, proc({ 10: LIB, 11: 'unreadable' }, [`${DIR}/11.sock`]))).toBe(true);
  });

  it('is not pending for a process that will never get a socket: the library said so, or its path is too long', () => {
    expect(SwapSessions.pending(DIR, 10, proc({ 10: LIB }, [`${DIR}/10.noswap`]))).toBe(false);
    const long = `/var/lib/${'x'.repeat(90)}/swap`;
    expect(socketPathFits(long, 10)).toBe(false);
    expect(socketPathFits(DIR, 4_194_304)).toBe(true);
    expect(SwapSessions.pending(long, 10, proc({ 10: LIB }))).toBe(false);
    // 107 bytes fit (with the NUL, sun_path's 108); 108 do not.
    const at = (n: number) => `/${'d'.repeat(n - '/'.length - '/1.sock'.length)}`;
    expect(socketPathFits(at(107), 1)).toBe(true);
    expect(socketPathFits(at(108), 1)).toBe(false);
  });
});
