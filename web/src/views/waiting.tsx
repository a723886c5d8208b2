/** Why a task waits, from the structured reason the API gives (WaitReason), not from its text alone. */
import type { WaitReason } from '../../../src/contract/task';
import { bytes, milli } from '../format';
import { TaskLink } from '../widgets';

const KINDS: Readonly<Record<WaitReason['kind'], string>> = {
  noRoom: 'no room',
  quota: 'quota',
  behind: 'behind another task',
  preempting: 'preempting',
  smPartition: 'SM partition',
};

export function WaitDetails({ reason }: { reason: WaitReason | null }) {
  if (reason === null) return <span class="muted">–</span>;
  return (
    <div class="wait" data-kind={reason.kind}>
      <span class={`badge badge-wait`}>{KINDS[reason.kind]}</span> {reason.text}
      {detail(reason)}
    </div>
  );
}

function detail(reason: WaitReason) {
  switch (reason.kind) {
    case 'noRoom':
    case 'smPartition':
      return reason.gpus.length === 0 ? null : (
        <ul class="refusals">
          {reason.gpus.map((g) => (
            <li key={g.gpu}>
              GPU {g.gpu}: <span class="mono">{g.reason}</span> – {g.text}
            </li>
          ))}
        </ul>
      );
    case 'quota': {
      const amount = (n: number): string => (reason.resource === 'memoryBytes' ? bytes(n) : reason.resource === 'computeMilli' ? milli(n) : String(n));
      return (
        <div class="muted">
          tenant {reason.tenant}: asks {amount(reason.requested)} of {reason.resource}, {amount(reason.remaining)} left
        </div>
      );
    }
    case 'behind':
      return (
        <div class="muted">
          waits behind <TaskLink id={reason.taskId} />
        </div>
      );
    case 'preempting':
      return (
        <ul class="refusals">
          {reason.victims.map((v, i) => (
            <li key={v.taskId ?? i}>
              {v.action} <TaskLink id={v.taskId} />
            </li>
          ))}
        </ul>
      );
  }
}
