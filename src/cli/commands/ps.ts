import { InvalidArgumentError, type Command } from 'commander';
import type { TaskBody } from '../../contract/schemas.js';
import { TASK_STATES, type WaitReason } from '../../contract/task.js';
import { ErrorCodes, formatBytes, GsError } from '../../domain/index.js';
import { addOutputOptions, outputOf, render, writeOut, type OutputFlags } from '../output/format.js';
import { renderTable } from '../output/table.js';
import { addHostOption, clientFor, listTasks } from './tasks-common.js';

/** `--filter` keys: what each matches. `status` is docker's word for state. */
export const FILTER_KEYS: Readonly<Record<string, string>> = {
  id: 'the id starts with it',
  state: `the state is it (${TASK_STATES.join(', ')}); finished states need no -a`,
  status: 'the same as state (docker\'s word)',
  tenant: 'the task is that tenant\'s',
  name: 'the command line contains it (tasks have no names of their own)',
};

export interface TaskFilter {
  readonly key: 'id' | 'state' | 'tenant' | 'name';
  readonly value: string;
}

/** One `--filter key=value`, checked: an unknown key or state is an error that lists the known ones. */
export function parseFilter(value: string, previous: readonly TaskFilter[] = []): TaskFilter[] {
  const eq = value.indexOf('=');
  const key = eq < 0 ? value : value.slice(0, eq);
  const v = eq < 0 ? '' : value.slice(eq + 1);
  if (!(key in FILTER_KEYS)) throw new InvalidArgumentError(`"${key}" is not a filter; expected key=value with one of ${Object.keys(FILTER_KEYS).join(', ')}`);
  if (eq < 0 || v === '') throw new InvalidArgumentError(`"${value}": expected ${key}=VALUE`);
  const k = key === 'status' ? 'state' : (key as TaskFilter['key']);
  if (k === 'state' && !(TASK_STATES as readonly string[]).includes(v)) throw new InvalidArgumentError(`"${v}" is not a task state; expected one of ${TASK_STATES.join(', ')}`);
  return [...previous, { key: k, value: v }];
}

/**
 * The list query the filters allow (states and one tenant are filtered by the daemon), and the
 * test each task must pass: filters of one key match any of their values, all keys must match.
 */
export function filterQuery(filters: readonly TaskFilter[], all: boolean): { query: string; keep: (t: TaskBody) => boolean } {
  const of = (key: TaskFilter['key']): string[] => filters.filter((f) => f.key === key).map((f) => f.value);
  const states = of('state');
  const tenants = of('tenant');
  const params = new URLSearchParams();
  if (states.length > 0) params.set('state', [...new Set(states)].join(','));
  else if (all) params.set('all', '1');
  if (tenants.length === 1) params.set('tenant', tenants[0] ?? '');
  const ids = of('id');
  const names = of('name');
  const keep = (t: TaskBody): boolean =>
    (tenants.length === 0 || tenants.includes(t.tenant ?? '')) &&
    (ids.length === 0 || ids.some((p) => t.id.startsWith(p))) &&
    (names.length === 0 || names.some((n) => t.command.join(' ').includes(n)));
  return { query: params.toString(), keep };
}

interface PsFlags extends OutputFlags {
  readonly host?: string;
  readonly all?: boolean;
  readonly quiet?: boolean;
  readonly filter?: TaskFilter[];
}

export function registerPs(program: Command): void {
  const cmd = program
    .command('ps')
    .description('list queued and running tasks (--all: finished ones too)')
    .option('-a, --all', 'include finished tasks')
    .option('-q, --quiet', 'print task ids only, one a line')
    .option('--filter <key=value>', `only tasks that match (repeatable: one key's values are alternatives, keys must all match); keys: ${Object.keys(FILTER_KEYS).join(', ')}`, parseFilter);
  addOutputOptions(cmd).addHelpText('after', `
Filters:
${Object.entries(FILTER_KEYS).map(([k, what]) => `  ${`${k}=VALUE`.padEnd(14)} ${what}`).join('\n')}

Examples:
  gpushare ps -a --filter state=exited --filter tenant=ml
  gpushare ps -q --filter name=train.py | xargs gpushare kill
  gpushare ps --format '{{.ID}} {{.State}} {{.ExitCode}}'
  gpushare ps -o wide --no-headers
`);
  addHostOption(cmd).action(async (flags: PsFlags) => {
    const output = outputOf(flags);
    if (flags.quiet && (flags.output !== undefined || flags.json || flags.format !== undefined)) throw new GsError(ErrorCodes.invalidArgument, '-q prints ids only; it cannot be combined with -o, --json or --format');
    const { query, keep } = filterQuery(flags.filter ?? [], flags.all === true);
    // Every page: the daemon sends at most 500 tasks at a time.
    const tasks = (await listTasks(await clientFor(flags), query)).tasks.filter(keep);
    if (flags.quiet) return writeOut(tasks.map((t) => t.id).join('\n'));
    const now = Date.now();
    writeOut(await render(output, { items: tasks, name: (t) => `task/${t.id}`, table: (o) => renderTasks(tasks, now, o) }));
  });
}

/** The table of `ps` (and `top`); `wide` adds the tenant, the submission time and the whole command. */
export function renderTasks(tasks: readonly TaskBody[], now: number, options: { readonly wide?: boolean; readonly headers?: boolean } = {}): string {
  if (tasks.length === 0) return options.headers === false ? '' : 'No tasks.';
  const wide = options.wide === true;
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
    ...(wide ? [t.tenant ?? '-', new Date(t.submittedAt).toISOString().replace(/\.\d+Z$/, 'Z'), t.command.join(' ')] : [truncate(t.command.join(' '), 40)]),
  ]);
  const headers = ['ID', 'STATE', 'PRIO', 'GPUS', 'MEM/GPU', 'COMPUTE', 'PID', 'AGE', 'WAITING', ...(wide ? ['TENANT', 'SUBMITTED', 'COMMAND'] : ['COMMAND'])];
  return renderTable(headers, rows, { headers: options.headers !== false });
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
  gpuCordoned: 'cordoned',
  gpuFault: 'fault',
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
