// A child process's CPU time (user + system, all its threads) from /proc/<pid>/stat, for
// benchmarks that compare how much work two builds' processes do for the same calls: unlike a
// call's wall-clock latency, it barely moves with the other work on a shared machine.
import { readFileSync } from 'node:fs';

/** The kernel's clock ticks per second (USER_HZ): 100 on Linux's usual builds. */
const TICKS_PER_S = 100;

/** CPU ms used so far by process `pid` (10 ms resolution), or NaN where /proc cannot tell. */
export function processCpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Fields after the command (which may hold spaces) start past its closing parenthesis: state
    // is field 3, utime field 14, stime field 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_S;
  } catch {
    return NaN;
  }
}
