import { describe, expect, it } from 'vitest';
import { isSameLiveProcess, librariesIn, parseProcStat, readMappedLibraries, readProcStat, signalName, signalNumber } from './proc.js';

describe('parseProcStat', () => {
  it('counts fields from the last parenthesis, whatever the command name holds', () => {
    const rest = 'S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654 20 21';
    expect(parseProcStat(`42 (a) b (c) d) ${rest}`)).toEqual({ state: 'S', startTime: 987654, pgrp: 2, session: 3 });
    expect(parseProcStat(`42 (plain) ${rest}`)).toEqual({ state: 'S', startTime: 987654, pgrp: 2, session: 3 });
  });

  it('refuses lines that are not stat lines', () => {
    expect(parseProcStat('garbage')).toBeNull();
    expect(parseProcStat('1 (x) S 1')).toBeNull();
  });
});

describe('isSameLiveProcess', () => {
  it('knows this process by pid and start time, and a reused pid by its different start time', () => {
    const me = readProcStat(process.pid);
    expect(me).not.toBeNull();
    expect(isSameLiveProcess(process.pid, me?.startTime ?? -1)).toBe(true);
    expect(isSameLiveProcess(process.pid, (me?.startTime ?? 0) + 1)).toBe(false);
    expect(isSameLiveProcess(2 ** 22 + 12345, 1)).toBe(false);
  });
});

describe('signals', () => {
  it.each([
    ['SIGTERM', 15],
    ['term', 15],
    ['INT', 2],
    ['9', 9],
    ['SIGFOO', null],
    ['999', null],
  ])('%s is %s', (text, n) => {
    expect(signalNumber(text)).toBe(n);
  });

  it('names numbers', () => {
    expect(signalName(15)).toBe('SIGTERM');
    expect(signalName(250)).toBe('signal 250');
  });
});

describe('librariesIn', () => {
  const line = (path: string) => `7f1c2a000000-7f1c2a021000 r-xp 00000000 fd:01 1234    ${path}`;
  it('finds the CUDA driver and libgpushare among the mapped files', () => {
    expect(librariesIn([line('/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15'), line('/opt/gpushare/build/native/libgpushare.so')].join('\n'))).toEqual({ cuda: true, gpushare: true });
    expect(librariesIn(line('/usr/lib/x86_64-linux-gnu/libcuda.so.1'))).toEqual({ cuda: true, gpushare: false });
    expect(librariesIn(line('/usr/lib/libc.so.6'))).toEqual({ cuda: false, gpushare: false });
  });
  it('takes a name only as the mapped file, not inside a directory name or another library', () => {
    expect(librariesIn(line('/tmp/libgpushare.so.d/libfoo.so'))).toEqual({ cuda: false, gpushare: false });
    expect(librariesIn(line('/usr/lib/libcudart.so.12'))).toEqual({ cuda: false, gpushare: false });
  });
});

describe('readMappedLibraries', () => {
  const fails = (code: string) => () => {
    throw Object.assign(new Error(code), { code });
  };
  it('tells a process that is gone from one whose maps this daemon may not read (never "no CUDA")', () => {
    expect(readMappedLibraries(1, fails('ENOENT'))).toBe('gone');
    expect(readMappedLibraries(1, fails('ESRCH'))).toBe('gone');
    expect(readMappedLibraries(1, fails('EACCES'))).toBe('unreadable');
    expect(readMappedLibraries(1, fails('EPERM'))).toBe('unreadable');
    expect(readMappedLibraries(1, () => '7f1c2a000000-7f1c2a021000 r-xp 00000000 fd:01 1234    /usr/lib/libcuda.so.1')).toEqual({ cuda: true, gpushare: false });
  });
  it('reads this process as what it is, and a pid that cannot exist as gone', () => {
    expect(readMappedLibraries(process.pid)).toEqual({ cuda: false, gpushare: false });
    expect(readMappedLibraries(2 ** 22 + 1)).toBe('gone');
  });
});
