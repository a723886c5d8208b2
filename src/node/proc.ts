/** Linux process facts from /proc, used to supervise tasks the daemon did not start itself. */
import { readdirSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';

export interface ProcStat {
  /** `R`, `S`, `Z` (zombie: ended, not yet reaped)... */
  readonly state: string;
  /** Start time in clock ticks since boot (field 22): with the pid, names one process forever. */
  readonly startTime: number;
  /** Process group (field 5). */
  readonly pgrp: number;
  /** Session id (field 6). */
  readonly session: number;
}

/** /proc/PID/stat's state and start time, or null when no such process exists. */
export function readProcStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  return parseProcStat(text);
}

/** Parses a stat line; the command name (field 2) may hold spaces and parentheses, so fields count from the last `)`. */
export function parseProcStat(text: string): ProcStat | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const fields = text.slice(close + 2).trim().split(' ');
  // fields[0] is field 3 (state), so field 22 is fields[19].
  const state = fields[0];
  const startTime = Number(fields[19]);
  const pgrp = Number(fields[2]);
  const session = Number(fields[3]);
  if (state === undefined || !Number.isSafeInteger(startTime) || !Number.isSafeInteger(pgrp) || !Number.isSafeInteger(session)) return null;
  return { state, startTime, pgrp, session };
}

/** Whether `pid` is still the process that started at `startTime` and has not ended. */
export function isSameLiveProcess(pid: number, startTime: number): boolean {
  const st = readProcStat(pid);
  return st !== null && st.startTime === startTime && st.state !== 'Z' && st.state !== 'X';
}

/** `SIGTERM` for 15, or `signal 99` for a number the OS does not name. */
export function signalName(signal: number): string {
  for (const [name, n] of Object.entries(constants.signals)) if (n === signal) return name;
  return `signal ${signal}`;
}

/** The signal number for `SIGTERM`/`TERM`/`15`, or null when none is known by that name. */
export function signalNumber(text: string): number | null {
  const upper = text.trim().toUpperCase();
  if (/^\d+$/.test(upper)) {
    const n = Number(upper);
    return Object.values(constants.signals).includes(n) ? n : null;
  }
  const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  const n = (constants.signals as Record<string, number | undefined>)[name];
  return n ?? null;
}

/** Signals a whole process group; false when it no longer exists. */
export function signalGroup(pgid: number, signal: number): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** Pids of the live processes whose process group is `pgid` (from /proc; zombies left out). */
export function groupMembers(pgid: number): number[] {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // ended meanwhile
    }
    const stat = parseProcStat(text);
    if (stat !== null && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X') pids.push(Number(name));
  }
  return pids.sort((a, b) => a - b);
}

/** Whether the process has the CUDA driver library mapped (it may hold GPU state); false when gone or its maps cannot be read. */
export function usesCudaDriver(pid: number): boolean {
  return mappedLibraries(pid).cuda;
}

/**
 * Whether the process may hold GPU state: it maps the CUDA driver, or its maps cannot be read
 * (not root, hidepid, another user's process: failing closed, issue 22 review). False when it is gone.
 */
export function mayUseCudaDriver(pid: number): boolean {
  const libs = readMappedLibraries(pid);
  return libs === 'unreadable' || (libs !== 'gone' && libs.cuda);
}

export interface MappedLibraries {
  readonly cuda: boolean;
  readonly gpushare: boolean;
}

/**
 * Which of the two libraries the process has mapped: the CUDA driver (it may hold GPU state)
 * and libgpushare (every GPU allocation it makes is counted in its task's region). Both false
 * when the process is gone or its maps cannot be read (readMappedLibraries tells those apart).
 */
export function mappedLibraries(pid: number): MappedLibraries {
  const libs = readMappedLibraries(pid);
  return typeof libs === 'string' ? { cuda: false, gpushare: false } : libs;
}

/**
 * mappedLibraries, telling a process that is gone (`gone`: no such process, ENOENT/ESRCH) from
 * one whose maps this daemon may not read (`unreadable`: EACCES/EPERM under a daemon that is
 * not root, hidepid, or any other error), which callers must not read as "no CUDA". `read` is
 * for tests.
 */
export function readMappedLibraries(pid: number, read: (path: string) => string = (path) => readFileSync(path, 'utf8')): MappedLibraries | 'gone' | 'unreadable' {
  let maps: string;
  try {
    maps = read(`/proc/${pid}/maps`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ESRCH' ? 'gone' : 'unreadable';
  }
  return librariesIn(maps);
}

/** The libraries a /proc/PID/maps text maps (mappedLibraries). Pure. */
export function librariesIn(maps: string): { readonly cuda: boolean; readonly gpushare: boolean } {
  return { cuda: /\/libcuda\.so[.\d]*$/m.test(maps), gpushare: /\/libgpushare[^/\n]*\.so[.\d]*$/m.test(maps) };
}
