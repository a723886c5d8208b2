/** Alerts (GET /v1/alerts, where the daemon has them) and tenants against their quotas. */
import type { AlertEvent } from '../../../src/contract/monitor';
import { bytes, clock, milli } from '../format';
import type { LiveState } from '../live';
import { Badge, Meter, Section, TaskLink, Table } from '../widgets';

export function AlertsView({ state }: { state: LiveState }) {
  if (state.alerts === 'unavailable') {
    return (
      <Section title="Alerts" id="alerts">
        <p class="muted" id="alerts-unavailable">
          Alerts are not available on this daemon (it has no /v1/alerts).
        </p>
      </Section>
    );
  }
  if (state.alerts === null) return <p class="muted">Loading…</p>;
  const order = (a: AlertEvent): number => (a.state === 'firing' ? 0 : 1);
  const alerts = [...state.alerts].sort((a, b) => order(a) - order(b) || b.startedAt - a.startedAt);
  return (
    <Section title={`Alerts (${alerts.filter((a) => a.state === 'firing').length} firing)`} id="alerts">
      {alerts.length === 0 ? (
        <p class="muted">No alerts.</p>
      ) : (
        <Table head={['State', 'Severity', 'Rule', 'Subject', 'Summary', 'Since', 'Resolved']}>
          {alerts.map((a) => (
            <tr key={a.id} class={a.silenced ? 'silenced' : ''}>
              <td>
                <Badge kind={a.state === 'firing' ? 'crit' : 'done'}>{a.state}</Badge> {a.silenced ? <Badge kind="done">silenced</Badge> : null}
              </td>
              <td>
                <Badge kind={a.severity === 'critical' ? 'crit' : a.severity === 'warning' ? 'warn' : 'done'}>{a.severity}</Badge>
              </td>
              <td class="mono">{a.rule}</td>
              <td>
                {a.subject.gpu !== undefined ? <a href={`#/gpu/${a.subject.gpu}`}>GPU {a.subject.gpu}</a> : null}
                {a.subject.task !== undefined ? <TaskLink id={a.subject.task} /> : null}
                {a.subject.tenant !== undefined && a.subject.tenant !== '' ? ` tenant ${a.subject.tenant}` : ''}
              </td>
              <td>{a.summary}</td>
              <td>{clock(a.startedAt)}</td>
              <td>{clock(a.resolvedAt)}</td>
            </tr>
          ))}
        </Table>
      )}
    </Section>
  );
}

export function TenantsView({ state }: { state: LiveState }) {
  return (
    <Section title="Tenants" id="tenants">
      {state.tenants.length === 0 ? (
        <p class="muted">No tenants.</p>
      ) : (
        <Table head={['Tenant', 'Running', 'Queued', 'GPUs (used / quota)', 'Memory', 'Compute']}>
          {state.tenants.map((t) => (
            <tr key={t.name} data-tenant={t.name}>
              <td>{t.name}</td>
              <td>{t.running}</td>
              <td>{t.queued}</td>
              <td>
                <Meter used={t.usage.gpus} limit={t.quota.gpus} label={`${t.usage.gpus} / ${t.quota.gpus ?? 'no quota'}`} />
              </td>
              <td>
                <Meter used={t.usage.memoryBytes} limit={t.quota.memoryBytes} label={`${bytes(t.usage.memoryBytes)} / ${t.quota.memoryBytes === null ? 'no quota' : bytes(t.quota.memoryBytes)}`} />
              </td>
              <td>
                <Meter used={t.usage.computeMilli} limit={t.quota.computeMilli} label={`${milli(t.usage.computeMilli)} / ${t.quota.computeMilli === null ? 'no quota' : milli(t.quota.computeMilli)}`} />
              </td>
            </tr>
          ))}
        </Table>
      )}
    </Section>
  );
}
