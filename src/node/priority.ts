/**
 * The daemon's CPU priority over the tasks it starts. A machine full of tasks (500 short ones a
 * second on 2 cores, or a few CPU-hungry data loaders) must not make `gpushare ps` or a
 * submission wait: the control plane gets the CPU first, as a kubelet or a systemd service with a
 * higher CPUWeight does.
 *
 * Linux groups processes by session for CPU fairness (autogroups, kernel.sched_autogroup_enabled,
 * for processes in the root CPU cgroup): each task leads a session of its own (the spawner's
 * setsid), so each is a group as heavy as the daemon's, and a hundred runnable tasks leave the
 * daemon a hundredth of a CPU. A group's weight is its nice value, set through
 * /proc/self/autogroup; it covers the daemon and its spawner (same session) and never reaches a
 * task (a new session starts a new group at nice 0; as root the spawner starts it at nice 10
 * and the task's wrapper sets it back to 0 once the command is exec'd: native/exec/spawner.c). Process nice values are not touched: a
 * task forked from a reniced process would inherit it. Only a daemon that leads its own session
 * (a service, `setsid gpushare serve`) does this: one started from a shell shares the terminal's
 * group, and raising that would raise everything else typed there.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseProcStat } from './proc.js';

/** The autogroup nice a daemon asks for when the config says `auto`: about 9 times a task's CPU weight when both want the CPU. */
export const AUTO_DAEMON_NICE = -10;

export type DaemonNiceSetting = 'auto' | 'off' | number;

export type PriorityOutcome =
  | { readonly kind: 'set'; readonly nice: number }
  | { readonly kind: 'off' }
  /** Not applied: why (no autogroups here, not permitted); `asked` is whether the config named a value. */
  | { readonly kind: 'unavailable'; readonly problem: string; readonly asked: boolean };

/** This process as the kernel shows it (a parameter for tests). */
export interface ProcSelf {
  /** /proc/self/autogroup's text. */
  readAutogroup(): string;
  writeAutogroup(text: string): void;
  /** /proc/self/stat's text. */
  readStat(): string;
  readonly pid: number;
}

const PROC_SELF: ProcSelf = {
  readAutogroup: () => readFileSync('/proc/self/autogroup', 'utf8'),
  writeAutogroup: (text) => writeFileSync('/proc/self/autogroup', text),
  readStat: () => readFileSync('/proc/self/stat', 'utf8'),
  pid: process.pid,
};

/** "/autogroup-123 nice -10\n" -> -10; null when the text is not that. */
export function parseAutogroupNice(text: string): number | null {
  const m = /^\/autogroup-\d+ nice (-?\d+)\s*$/.exec(text);
  return m ? Number(m[1]) : null;
}

/** Gives this process's session group the nice value the setting asks for; says what happened. */
export function applyDaemonNice(setting: DaemonNiceSetting, proc: ProcSelf = PROC_SELF): PriorityOutcome {
  if (setting === 'off') return { kind: 'off' };
  const nice = setting === 'auto' ? AUTO_DAEMON_NICE : setting;
  const asked = setting !== 'auto';
  let leader: boolean;
  try {
    leader = parseProcStat(proc.readStat())?.session === proc.pid;
  } catch (err) {
    return { kind: 'unavailable', problem: `cannot read /proc/self/stat: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, asked };
  }
  if (!leader) return { kind: 'unavailable', problem: "the daemon shares its terminal's session, whose CPU priority it leaves alone (run it as a service, or under setsid)", asked };
  let current: number | null;
  try {
    current = parseAutogroupNice(proc.readAutogroup());
  } catch (err) {
    return { kind: 'unavailable', problem: `this kernel has no autogroups (/proc/self/autogroup: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, asked };
  }
  if (current === null) return { kind: 'unavailable', problem: '/proc/self/autogroup reads in an unknown format', asked };
  if (current === nice) return { kind: 'set', nice };
  try {
    proc.writeAutogroup(String(nice));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'EPERM' || code === 'EACCES' ? 'not permitted (a nice value below 0 needs root or CAP_SYS_NICE)' : `${code ?? (err as Error).message}`;
    return { kind: 'unavailable', problem: `could not set the daemon's CPU priority to nice ${nice}: ${why}`, asked };
  }
  return { kind: 'set', nice };
}
