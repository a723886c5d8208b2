/** How a task ended, from what the wrapper and waitpid say: its final state and message. Pure. */
import { getSystemErrorMap } from 'node:util';
import type { Task, TaskState } from '../contract/task.js';
import { signalName } from './proc.js';
import type { Ending } from './supervisor.js';

const ERRNO = getSystemErrorMap();

/** The task's final state from what the wrapper and waitpid say; honest about what is unknown. */
export function describeEnding(task: Task, ending: Ending, atStart: boolean): { state: TaskState; exitCode: number | null; signal: string | null; message: string | null } {
  const killed = task.killRequested;
  const s = ending.status;
  if (s?.kind === 'error') {
    const [name, text] = ERRNO.get(-s.errno) ?? [`errno ${s.errno}`, 'unknown error'];
    return { state: 'failed', exitCode: null, signal: null, message: `cannot run "${task.command[0]}": ${text} (${name})` };
  }
  if (s?.kind === 'exit') return { state: killed ? 'killed' : 'exited', exitCode: s.code, signal: null, message: null };
  if (s?.kind === 'signal') return { state: killed ? 'killed' : 'exited', exitCode: null, signal: signalName(s.signal), message: null };
  // No status file: the wrapper itself died (SIGKILL to the group), or the process vanished while no daemon watched.
  if (ending.wrapper?.signal) return { state: killed ? 'killed' : 'exited', exitCode: null, signal: ending.wrapper.signal, message: null };
  if (ending.wrapper && ending.wrapper.code !== null) return { state: killed ? 'killed' : 'failed', exitCode: ending.wrapper.code, signal: null, message: 'the task wrapper wrote no exit status' };
  const why = atStart ? 'its process was gone when the daemon restarted' : 'its process ended while not a child of this daemon';
  return { state: killed ? 'killed' : 'lost', exitCode: null, signal: null, message: `${why} and left no exit status (killed with SIGKILL?); how it ended is unknown` };
}
