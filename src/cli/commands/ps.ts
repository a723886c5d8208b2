import type { Command } from 'commander';
import type { TaskBody } from '../../contract/schemas.js';
import type { WaitReason } from '../../contract/task.js';
import { formatBytes } from '../../domain/index.js';
import { renderTable } from '../output/table.js';
import { addHostOption, clientFor, listTasks } from './tasks-common.js';

export function registerPs(program: Command): void {
  const cmd = program
    .command('ps')
    .description('list queued and running tasks (--all: finished ones too)')
    .option('-a, --all', 'include finished tasks')
    .option('--json', 'print a JSON array of tasks (every field)');
  addHostOption(cmd).action(async (flags: { host?: string; all?: boolean; json?: boolean }) => {
    // Every page: the daemon sends at most 500 tasks at a time.
    const { tasks } = await listTasks(await clientFor(flags), flags.all ? 'all=1' : '');
    process.stdout.write(flags.json ? `${JSON.stringify(tasks, null, 2)}\n` : `${renderTasks(tasks, Date.now())}\n`);
  });
}

export function renderTasks(tasks: readonly TaskBody[], now: number): string {
  if (tasks.length === 0) return 'No tasks.';
  const rows = tasks.map((t) => [
    t.id,
    t.state === 'exited' ? `exited (${t.exitCode ?? t.signal ?? '?'})` : t.state === 'killed' && t.signal ? `killed (${t.signal})` : t.state,
    String(t.priority),
    t.gpus === null ? (t.request.gpus === 0 ? '-' : `(${t.request.gpus})`) : t.gpus.map((g) => g.index).join(','),
    t.gpus === null || t.gpus.length === 0 ? '-' : formatBytes(t.gpus[0]?.memoryBytes ?? 0),
    t.computeLimitPercent === null ? '-' : `${t.computeLimitPercent}%`,
    t.pid === null ? '-' : String(t.pid),
    age(now - (t.startedAt ?? t.submittedAt)),
    t.waiting === null ? '-' : shortWait(t.waiting),
    truncate(t.command.join(' '), 40),
  ]);
  return renderTable(['ID', 'STATE', 'PRIO', 'GPUS', 'MEM/GPU', 'COMPUTE', 'PID', 'AGE', 'WAITING', 'COMMAND'], rows);
}

/** The scheduler's per-GPU reason kinds in a word or two. */
const GPU_REFUSAL: Readonly<Record<string, string>> = {
  insufficientGpuMemory: 'memory',
  insufficientCompute: 'compute',
  quotaMemory: 'quota memory',
  heldExclusively: 'held exclusively',
  notIdleForExclusive: 'not idle',
  modelNotSelected: 'model',
  uuidNotSelected: 'uuid',
  numaMismatch: 'NUMA',
  gpuUnhealthy: 'unhealthy',
  migMismatch: 'MIG mode',
  noMigProfileFits: 'MIG profile',
};

const QUOTA_RESOURCE: Readonly<Record<string, string>> = { gpus: 'GPUs', memoryBytes: 'memory', computeMilli: 'compute' };

/** Why a task waits, in a column (`gpushare inspect` prints it in full): `GPU 0 memory +1`, `quota: memory`, `behind 3f2a1c`, `SMs`. */
export function shortWait(w: WaitReason): string {
  switch (w.kind) {
    case 'noRoom': {
      const first = w.gpus[0];
      if (first === undefined) return 'no room';
      const more = w.gpus.length > 1 ? ` +${w.gpus.length - 1}` : '';
      return `GPU ${first.gpu} ${GPU_REFUSAL[first.reason] ?? first.reason}${more}`;
    }
    case 'quota':
      return `quota: ${QUOTA_RESOURCE[w.resource] ?? w.resource}`;
    case 'behind':
      return w.taskId === null ? 'behind other' : `behind ${w.taskId.slice(0, 6)}`;
    case 'preempting':
      return `preempting ${w.victims.length}`;
    case 'smPartition':
      return 'SMs';
  }
}

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m` : s < 86400 ? `${Math.floor(s / 3600)}h` : `${Math.floor(s / 86400)}d`;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}
