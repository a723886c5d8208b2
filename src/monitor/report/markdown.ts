/** A report as Markdown: headed sections and tables, for a wiki page or a ticket. */
import { bytes, dash, duration, gpuHours, percent, triple, utc } from './format.js';
import type { Report } from './model.js';

/** A Markdown table; cells have `|` and line breaks escaped. */
function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const cell = (c: string): string => c.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
  const line = (cells: readonly string[]): string => `| ${cells.map(cell).join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

export function renderMarkdown(r: Report): string {
  const out: string[] = [];
  out.push(`# gpushare report: ${utc(r.from)} to ${utc(r.to)}`, '', `Made ${utc(r.generatedAt)} from ${r.source}. ${r.tasksInWindow} task${r.tasksInWindow === 1 ? '' : 's'} lived in the window.`, '');
  out.push('## GPUs', '');
  if (r.gpus.length === 0) out.push('No GPUs.');
  else {
    out.push(table(['GPU', 'Model', 'Util mean', 'Util p95', 'Util max', 'Mem mean', 'Mem p95', 'Mem max', 'Memory'], r.gpus.map((g) => [String(g.index), g.model, ...triple(g.utilization, percent), ...triple(g.memoryUsedBytes, bytes), bytes(g.memoryTotalBytes)])));
    const step = r.gpus.find((g) => g.stepSeconds !== null)?.stepSeconds;
    if (step) out.push('', `p95 is over the history's points of ${duration(step)} each (their means); max is the highest sample.`);
  }
  out.push('', '## Tenants', '');
  out.push(r.tenants.length === 0 ? 'No tenants had tasks.' : table(['Tenant', 'Tasks', 'GPU-hours', 'Mem mean', 'Mem max', 'Compute mean', 'Compute max'], r.tenants.map((t) => [t.tenant, String(t.tasks), gpuHours(t.gpuSeconds), bytes(t.memoryUsedBytes?.mean), bytes(t.memoryUsedBytes?.max), percent(t.computeShare?.mean), percent(t.computeShare?.max)])));
  out.push('', '## Top tasks (by GPU-time)', '');
  out.push(r.topTasks.length === 0 ? 'No tasks.' : table(['Task', 'Tenant', 'State', 'GPU-hours', 'Reserved', 'Peak', 'Waited', 'Suspended', 'Command'], r.topTasks.map((t) => [t.id, t.tenant ?? dash, t.state, gpuHours(t.gpuSeconds), bytes(t.reservedMemoryBytes), bytes(t.peakMemoryBytes), duration(t.waitedSeconds), String(t.suspensions), t.command.length > 60 ? `${t.command.slice(0, 57)}...` : t.command])));
  const w = r.waits;
  out.push('', '## Waits', '');
  out.push(table(['Started', 'Mean wait', 'p50', 'p95', 'Max', 'Still queued', 'Longest queued', 'Queue mean', 'Queue max'], [[String(w.started), duration(w.meanSeconds), duration(w.p50Seconds), duration(w.p95Seconds), duration(w.maxSeconds), String(w.stillQueued), duration(w.longestQueuedSeconds), w.queueLength === null ? dash : w.queueLength.mean.toFixed(1), w.queueLength === null ? dash : String(w.queueLength.max)]]));
  const s = r.suspensions;
  out.push('', '## Suspensions', '');
  out.push(table(['Suspended', 'Resumed', 'Failed', 'Mean suspend', 'Mean resume', 'GPU memory moved'], [[String(s.suspended), String(s.resumed), String(s.failed), s.meanSuspendMs === null ? dash : `${Math.round(s.meanSuspendMs)} ms`, s.meanResumeMs === null ? dash : `${Math.round(s.meanResumeMs)} ms`, bytes(s.gpuBytesMoved)]]));
  const a = r.alerts;
  out.push('', '## Alerts', '');
  if (!a.available) out.push('This daemon keeps no alerts (no GET /v1/alerts): none recorded.');
  else if (a.total === 0) out.push('No alerts in the window.');
  else {
    out.push(`${a.total} alert${a.total === 1 ? '' : 's'} (${a.bySeverity.critical} critical, ${a.bySeverity.warning} warning, ${a.bySeverity.info} info); ${a.firingAtEnd} still firing at the end.`, '');
    out.push(table(['Started', 'Severity', 'State', 'Rule', 'Summary'], a.list.map((x) => [utc(x.startedAt), x.severity, x.silenced ? `${x.state} (silenced)` : x.state, x.rule, x.summary])));
  }
  return `${out.join('\n')}\n`;
}
