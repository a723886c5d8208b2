import type { Command } from 'commander';
import type { TaskBody } from '../../contract/schemas.js';
import { formatBytes } from '../../domain/index.js';
import { renderTable } from '../output/table.js';
import { addHostOption, clientFor } from './tasks-common.js';

export function registerPs(program: Command): void {
  const cmd = program
    .command('ps')
    .description('list queued and running tasks (--all: finished ones too)')
    .option('-a, --all', 'include finished tasks')
    .option('--json', 'print a JSON array of tasks (every field)');
  addHostOption(cmd).action(async (flags: { host?: string; all?: boolean; json?: boolean }) => {
    const tasks = await (await clientFor(flags)).json<TaskBody[]>('GET', `/v1/tasks${flags.all ? '?all=1' : ''}`);
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
    truncate(t.command.join(' '), 40),
  ]);
  return renderTable(['ID', 'STATE', 'PRIO', 'GPUS', 'MEM/GPU', 'COMPUTE', 'PID', 'AGE', 'COMMAND'], rows);
}

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m` : s < 86400 ? `${Math.floor(s / 3600)}h` : `${Math.floor(s / 86400)}d`;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}
