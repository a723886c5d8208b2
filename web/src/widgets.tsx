/** Small pieces every view uses: a used-of-limit bar, a state badge, a link to a task. */
import type { ComponentChildren } from 'preact';

/** `used` of `limit` as a bar; past 85% it turns amber, past 95% red (the alerts' habits). */
export function Meter(props: { used: number | null; limit: number | null; label: string; title?: string }) {
  const ratio = props.used === null || props.limit === null || props.limit <= 0 ? null : props.used / props.limit;
  const level = ratio === null ? '' : ratio >= 0.95 ? 'crit' : ratio >= 0.85 ? 'warn' : '';
  return (
    <div class="meter" title={props.title}>
      <div class="meter-track">
        <div class={`meter-fill ${level}`} style={{ width: `${Math.min(100, (ratio ?? 0) * 100).toFixed(1)}%` }} />
      </div>
      <span class="meter-label">{props.label}</span>
    </div>
  );
}

export function Badge(props: { kind: string; children: ComponentChildren }) {
  return <span class={`badge badge-${props.kind}`}>{props.children}</span>;
}

export function TaskLink(props: { id: string | null }) {
  if (props.id === null) return <span class="muted">another tenant's task</span>;
  return (
    <a href={`#/task/${props.id}`} class="mono">
      {props.id}
    </a>
  );
}

export function Section(props: { title: string; children: ComponentChildren; id?: string }) {
  return (
    <section class="panel" id={props.id}>
      <h2>{props.title}</h2>
      {props.children}
    </section>
  );
}

/** A table with its header row; `children` are its body rows. */
export function Table(props: { head: readonly string[]; children: ComponentChildren }) {
  return (
    <table>
      <thead>
        <tr>
          {props.head.map((h) => (
            <th key={h}>{h}</th>
          ))}
        </tr>
      </thead>
      <tbody>{props.children}</tbody>
    </table>
  );
}
