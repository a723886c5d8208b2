/**
 * A report as one HTML file: styles inline, charts as inline SVG, no script and nothing fetched,
 * so it opens the same from a disk, a mail attachment or a ticket.
 */
import { bytes, dash, duration, gpuHours, percent, triple, utc } from './format.js';
import type { Report } from './model.js';
import { barChart, escapeXml, lineChart } from './svg.js';

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1180px;color:#1d2430;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d8dde6;padding-bottom:4px}
.meta{color:#5a6475;margin:0 0 12px}
table{border-collapse:collapse;margin:6px 0 10px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d8dde6;padding:4px 8px;text-align:right;vertical-align:top}th{background:#f2f4f8}
td.l,th.l{text-align:left}code{font-size:12px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:8px 0}.card{border:1px solid #d8dde6;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:20px}.card span{color:#5a6475;font-size:12px}
.charts{display:flex;flex-wrap:wrap;gap:8px 20px}
svg{background:#fff}svg .ct{font-size:12px;font-weight:600;fill:#1d2430}svg .yl,svg .xl{font-size:10px;fill:#5a6475}svg .yl{text-anchor:end}svg .bv{font-size:10px;fill:#1d2430;text-anchor:start}
svg .grid{stroke:#e6e9ef;stroke-width:1}svg .frame{fill:none;stroke:#c4cad4}svg .mean{fill:none;stroke:#2563eb;stroke-width:1.6}
svg .band{fill:#2563eb;fill-opacity:.15;stroke:none}svg .bar{fill:#2563eb}svg .none{font-size:12px;fill:#8a93a3}
.sev-critical{color:#b42318;font-weight:600}.sev-warning{color:#b54708}.note{color:#5a6475;font-size:12px}
`;

function table(headers: readonly string[], rows: readonly (readonly string[])[], left: readonly number[] = [0]): string {
  const cls = (i: number): string => (left.includes(i) ? ' class="l"' : '');
  return `<table><thead><tr>${headers.map((h, i) => `<th${cls(i)}>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c, i) => `<td${cls(i)}>${escapeXml(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

const card = (value: string, label: string): string => `<div class="card"><b>${escapeXml(value)}</b><span>${escapeXml(label)}</span></div>`;

export function renderHtml(r: Report): string {
  const title = `gpushare report: ${utc(r.from)} to ${utc(r.to)}`;
  const body: string[] = [];
  body.push(`<h1>${escapeXml(title)}</h1><p class="meta">Made ${escapeXml(utc(r.generatedAt))} from ${escapeXml(r.source)}.</p>`);
  const totalGpuSeconds = r.tenants.reduce((n, t) => n + t.gpuSeconds, 0);
  body.push(`<div class="cards">${card(String(r.gpus.length), 'GPUs')}${card(String(r.tasksInWindow), 'tasks in the window')}${card(gpuHours(totalGpuSeconds), 'GPU-hours used')}${card(duration(r.waits.p95Seconds), 'p95 queue wait')}${card(String(r.suspensions.suspended), 'suspensions')}${card(r.alerts.available ? String(r.alerts.total) : dash, 'alerts')}</div>`);

  body.push('<h2>GPUs</h2>');
  if (r.gpus.length === 0) body.push('<p>No GPUs.</p>');
  else {
    body.push(table(['GPU', 'Model', 'Util mean', 'Util p95', 'Util max', 'Mem mean', 'Mem p95', 'Mem max', 'Memory'], r.gpus.map((g) => [String(g.index), g.model, ...triple(g.utilization, percent), ...triple(g.memoryUsedBytes, bytes), bytes(g.memoryTotalBytes)]), [0, 1]));
    const step = r.gpus.find((g) => g.stepSeconds !== null)?.stepSeconds;
    if (step) body.push(`<p class="note">Charts: the line is the mean, the shade up to the max. p95 is over the history's points of ${escapeXml(duration(step))} each.</p>`);
    for (const g of r.gpus) {
      body.push(`<div class="charts">${lineChart({ line: g.charts.utilization, from: r.from, to: r.to, yMax: 1, yLabel: (v) => `${Math.round(v * 100)}%`, title: `GPU ${g.index} (${g.model}) utilization` })}${lineChart({ line: g.charts.memoryUsedBytes, from: r.from, to: r.to, yMax: g.memoryTotalBytes, yLabel: (v) => bytes(v), title: `GPU ${g.index} memory used` })}</div>`);
    }
  }

  body.push('<h2>Tenants</h2>');
  if (r.tenants.length === 0) body.push('<p>No tenants had tasks.</p>');
  else {
    body.push(barChart(r.tenants.map((t) => ({ label: t.tenant, value: t.gpuSeconds, text: `${gpuHours(t.gpuSeconds)} GPU-h` })), 'GPU-hours per tenant'));
    body.push(table(['Tenant', 'Tasks', 'GPU-hours', 'Mem mean', 'Mem max', 'Compute mean', 'Compute max'], r.tenants.map((t) => [t.tenant, String(t.tasks), gpuHours(t.gpuSeconds), bytes(t.memoryUsedBytes?.mean), bytes(t.memoryUsedBytes?.max), percent(t.computeShare?.mean), percent(t.computeShare?.max)])));
  }

  body.push('<h2>Top tasks by GPU-time</h2>');
  body.push(r.topTasks.length === 0 ? '<p>No tasks.</p>' : table(['Task', 'Tenant', 'State', 'GPU-hours', 'Reserved', 'Peak', 'Waited', 'Suspended', 'Command'], r.topTasks.map((t) => [t.id, t.tenant ?? dash, t.state, gpuHours(t.gpuSeconds), bytes(t.reservedMemoryBytes), bytes(t.peakMemoryBytes), duration(t.waitedSeconds), String(t.suspensions), t.command.length > 80 ? `${t.command.slice(0, 77)}...` : t.command]), [0, 1, 2, 8]));

  const w = r.waits;
  body.push('<h2>Waits</h2>');
  body.push(table(['Started', 'Mean wait', 'p50', 'p95', 'Max', 'Still queued', 'Longest queued', 'Queue mean', 'Queue max'], [[String(w.started), duration(w.meanSeconds), duration(w.p50Seconds), duration(w.p95Seconds), duration(w.maxSeconds), String(w.stillQueued), duration(w.longestQueuedSeconds), w.queueLength === null ? dash : w.queueLength.mean.toFixed(1), w.queueLength === null ? dash : String(w.queueLength.max)]], []));

  const s = r.suspensions;
  body.push('<h2>Suspensions</h2>');
  body.push(table(['Suspended', 'Resumed', 'Failed', 'Mean suspend', 'Mean resume', 'GPU memory moved'], [[String(s.suspended), String(s.resumed), String(s.failed), s.meanSuspendMs === null ? dash : `${Math.round(s.meanSuspendMs)} ms`, s.meanResumeMs === null ? dash : `${Math.round(s.meanResumeMs)} ms`, bytes(s.gpuBytesMoved)]], []));

  const a = r.alerts;
  body.push('<h2>Alerts</h2>');
  if (!a.available) body.push('<p>This daemon keeps no alerts (no GET /v1/alerts): none recorded.</p>');
  else if (a.total === 0) body.push('<p>No alerts in the window.</p>');
  else {
    body.push(`<p>${a.total} alert${a.total === 1 ? '' : 's'}: ${a.bySeverity.critical} critical, ${a.bySeverity.warning} warning, ${a.bySeverity.info} info; ${a.firingAtEnd} still firing at the end.</p>`);
    body.push(`<table><thead><tr><th class="l">Started</th><th class="l">Severity</th><th class="l">State</th><th class="l">Rule</th><th class="l">Summary</th></tr></thead><tbody>${a.list.map((x) => `<tr><td class="l">${escapeXml(utc(x.startedAt))}</td><td class="l sev-${x.severity}">${escapeXml(x.severity)}</td><td class="l">${escapeXml(x.silenced ? `${x.state} (silenced)` : x.state)}</td><td class="l">${escapeXml(x.rule)}</td><td class="l">${escapeXml(x.summary)}</td></tr>`).join('')}</tbody></table>`);
  }
  return `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeXml(title)}</title><style>${STYLE}</style></head><body>${body.join('\n')}</body></html>\n`;
}
