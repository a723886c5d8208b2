/**
 * Fault injection, a test facility (not a user setting): `GPUSHARE_FAULT=point[,point]` in the
 * daemon's environment makes it SIGKILL itself the moment it reaches one of the named points,
 * the way a crash or an OOM kill would stop it there. test/daemon/crash.test.ts arms each point
 * in turn, restarts the daemon without it and proves the task still ran exactly once and ended
 * as it should. Read once at start; unset, a point costs one comparison with null.
 */

/** Every point, in the order of the steps it follows. */
export const FAULT_POINTS = [
  // start (lifecycle.start): the intent is committed, the wrapper is spawned, `running` is committed
  'start.after-intent',
  'start.after-spawn',
  'start.after-commit',
  // kill (daemon.kill, lifecycle.signal): the request is committed, the signal sent, the escalation's SIGKILL sent
  'kill.after-request',
  'kill.after-signal',
  'kill.after-escalation',
  // suspend (lifecycle.suspend): `suspending` committed, the group checkpointed and stopped, `suspended` committed
  'suspend.after-intent',
  'suspend.after-checkpoint',
  'suspend.after-commit',
  // resume (lifecycle.resume): `resuming` committed, the group restored, `running` committed
  'resume.after-intent',
  'resume.after-restore',
  'resume.after-commit',
  // move of a swapped-out task (move.ts, inside resume): the rest checkpointed, restored onto the new GPUs
  'move.after-checkpoint',
  'move.after-restore',
] as const;
export type FaultPoint = (typeof FAULT_POINTS)[number];

/** The points armed by `value` (GPUSHARE_FAULT's form); an unknown name is an error, not a silent no-op. */
export function parseFaults(value: string | undefined): ReadonlySet<FaultPoint> | null {
  if (value === undefined || value.trim() === '') return null;
  const known = new Set<string>(FAULT_POINTS);
  const names = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0) throw new Error(`GPUSHARE_FAULT: unknown fault point ${unknown.join(', ')}; known: ${FAULT_POINTS.join(', ')}`);
  return new Set(names as FaultPoint[]);
}

// Read once: the daemon's environment does not change under it, and a point must cost nothing.
const armed = parseFaults(process.env['GPUSHARE_FAULT']);

/** Dies here, at once and without cleanup, if this point is armed. */
export function faultPoint(point: FaultPoint): void {
  if (armed !== null && armed.has(point)) process.kill(process.pid, 'SIGKILL');
}
