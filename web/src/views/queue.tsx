/** The queue in the order it will start (priority, then arrival), each with why it waits; then every live task. */
import type { TaskBody } from '../../../src/contract/schemas';
import { bytes, milli, since } from '../format';
import type { LiveState } from '../live';
import { Badge, Section, TaskLink, Table } from '../widgets';
import { WaitDetails } from './waiting';

/** The daemon's queue order (src/node/task.ts queueOrder): higher priority first, then earlier arrival. */
export function startOrder(tasks: readonly TaskBody[]): TaskBody[] {
  return tasks.filter((t) => t.state === 'queued' || (t.state === 'suspended' && t.autoResume)).sort((a, b) => b.priority - a.priority || a.seq - b.seq);
}

export function slice(t: TaskBody): string {
  const r = t.request;
  const memory = r.memory === null ? 'whole GPU' : r.memory.kind === 'bytes' ? bytes(r.memory.bytes) : `${Math.round(r.memory.fraction * 100)}% memory`;
  const compute = r.compute === null ? '' : ` · ${milli(r.compute * 1000)} compute`;
  return r.gpus === 0 ? 'CPU only' : `${r.gpus} × ${memory}${compute}`;
}

export function QueueView({ state, now }: { state: LiveState; now: number }) {
  const queue = startOrder(state.tasks);
  return (
    <Section title={`Queue (${queue.length})`} id="queue">
      {queue.length === 0 ? (
        <p class="muted">Nothing waits.</p>
      ) : (
        <Table head={['#', 'Task', 'Tenant', 'Priority', 'Asks', 'Waiting', 'Why']}>
          {queue.map((t, i) => (
            <tr key={t.id} data-task={t.id}>
              <td>{i + 1}</td>
              <td>
                <TaskLink id={t.id} /> {t.state === 'suspended' ? <Badge kind="warn">to resume</Badge> : null}
              </td>
              <td>{t.tenant ?? '–'}</td>
              <td>{t.priority}</td>
              <td>{slice(t)}</td>
              <td>{since(t.state === 'suspended' ? t.suspendedAt : t.submittedAt, now)}</td>
              <td>
                <WaitDetails reason={t.waiting} />
              </td>
            </tr>
          ))}
        </Table>
      )}
    </Section>
  );
}

export function TasksView({ state, now }: { state: LiveState; now: number }) {
  return (
    <Section title={`Tasks (${state.tasks.length} live)`} id="tasks">
      {state.tasks.length === 0 ? (
        <p class="muted">No live tasks.</p>
      ) : (
        <Table head={['Task', 'State', 'Tenant', 'Asks', 'GPUs', 'Since', 'Command']}>
          {state.tasks.map((t) => (
            <tr key={t.id} data-task={t.id}>
              <td>
                <TaskLink id={t.id} />
              </td>
              <td>
                <StateBadge state={t.state} />
              </td>
              <td>{t.tenant ?? '–'}</td>
              <td>{slice(t)}</td>
              <td>{t.gpus?.map((g) => g.index).join(', ') ?? '–'}</td>
              <td>{since(t.startedAt ?? t.submittedAt, now)}</td>
              <td class="mono command">{t.command.join(' ')}</td>
            </tr>
          ))}
        </Table>
      )}
    </Section>
  );
}

export function StateBadge({ state }: { state: TaskBody['state'] }) {
  const kind = state === 'running' ? 'ok' : state === 'queued' || state.startsWith('suspend') || state === 'resuming' || state === 'starting' ? 'warn' : state === 'exited' ? 'done' : 'crit';
  return <Badge kind={kind}>{state}</Badge>;
}
