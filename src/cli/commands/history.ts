import { InvalidArgumentError, type Command } from 'commander';
import { historySubjectOf } from '../../contract/history-subject.js';
import { HISTORY_SERIES, type HistoryPoint, type HistoryResponse, type HistorySeries } from '../../contract/monitor.js';
import { ErrorCodes, formatBytes, GsError } from '../../domain/index.js';
import { addOutputOptions, outputOf, render, writeOut, type OutputFlags } from '../output/format.js';
import { renderTable } from '../output/table.js';
import { addHostOption, clientFor } from './tasks-common.js';

interface HistoryFlags extends OutputFlags {
  readonly host?: string;
  readonly gpu?: number;
  readonly task?: string;
  readonly tenant?: string;
  readonly since?: string;
  readonly until?: string;
  readonly step?: string;
}

export function registerHistory(program: Command): void {
  const cmd = program
    .command('history')
    .description('one recorded series over a range: a sparkline and its points (min, mean, max)')
    .argument('<series>', `one of ${HISTORY_SERIES.join(', ')}`, seriesArg)
    .option('--gpu <index>', 'the GPU, for gpu_* series', gpuArg)
    .option('--task <id>', 'the task (id or unique prefix), for slice_* series')
    .option('--tenant <name>', 'the tenant, for tenant_* series')
    .option('--since <time>', 'from: a length of time back (90s, 15m, 1h, 7d) or Unix ms (default 1h)')
    .option('--until <time>', 'to: a length of time back or Unix ms (default now)')
    .option('--step <step>', 'what each point covers (5m, 1h, or seconds), coarser than stored: aggregated by the daemon');
  addOutputOptions(cmd, ['json', 'yaml'], { template: false }).addHelpText('after', `
The daemon keeps each series raw (one point a sample) for the last hour, then min, mean and
max per minute for 7 days and per hour for 90 days; a range is answered from the finest kept.

Examples:
  gpushare history gpu_utilization --gpu 0 --since 1h
  gpushare history slice_memory_used_bytes --task 3f2a1c --since 6h --step 5m
  gpushare history queue_length --since 7d -o json
`);
  addHostOption(cmd).action(async (series: HistorySeries, flags: HistoryFlags) => {
    const output = outputOf(flags);
    const wants = historySubjectOf(series);
    const given = (['gpu', 'task', 'tenant'] as const).filter((k) => flags[k] !== undefined);
    if (wants === null ? given.length > 0 : given.length !== 1 || given[0] !== wants) {
      throw new GsError(ErrorCodes.invalidArgument, `${series} takes ${wants === null ? 'no --gpu, --task or --tenant' : `--${wants}`}${given.length > 0 ? `, not --${given.join(' and --')}` : ''}`);
    }
    const query = new URLSearchParams({ series });
    for (const k of ['gpu', 'task', 'tenant', 'since', 'until', 'step'] as const) if (flags[k] !== undefined) query.set(k, String(flags[k]));
    const client = await clientFor(flags);
    const r = await client.json<HistoryResponse>('GET', `/v1/history?${query.toString()}`);
    writeOut(await render(output, { items: r.points, data: r, table: ({ headers }) => historyTable(r, headers) }));
  });
}

/** How a series' values read: bytes, percent (ratios), watts, degrees, or a count. */
export function valueText(series: HistorySeries, v: number): string {
  if (series.endsWith('_bytes')) return formatBytes(Math.round(v));
  if (series.endsWith('_utilization') || series.endsWith('_share')) return `${(v * 100).toFixed(1)}%`;
  if (series.endsWith('_watts')) return `${v.toFixed(0)} W`;
  if (series.endsWith('_celsius')) return `${v.toFixed(0)} C`;
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

const BLOCKS = '▁▂▃▄▅▆▇█';

/** The means as one line of block characters, at most `width` of them (neighbours averaged). */
export function sparkline(points: readonly HistoryPoint[], width = 60): string {
  if (points.length === 0) return '';
  const per = Math.ceil(points.length / width);
  const means: number[] = [];
  for (let i = 0; i < points.length; i += per) {
    const group = points.slice(i, i + per);
    means.push(group.reduce((a, p) => a + p.mean, 0) / group.length);
  }
  const lo = Math.min(...means);
  const hi = Math.max(...means);
  return means.map((m) => BLOCKS[hi === lo ? 0 : Math.min(BLOCKS.length - 1, Math.floor(((m - lo) / (hi - lo)) * BLOCKS.length))]).join('');
}

/** A sparkline with the range's low and high, then a table of the points (the last 30 when there are more). */
export function historyTable(r: HistoryResponse, headers: boolean): string {
  const subject = r.subject.gpu !== undefined ? `GPU ${r.subject.gpu}` : r.subject.task ?? r.subject.tenant ?? 'queue';
  if (r.points.length === 0) return `${r.series} (${subject}): no points recorded between ${new Date(r.from).toISOString()} and ${new Date(r.to).toISOString()}.`;
  const lo = Math.min(...r.points.map((p) => p.min));
  const hi = Math.max(...r.points.map((p) => p.max));
  const head = `${r.series} (${subject}), ${r.points.length} points of ${r.step}s: ${sparkline(r.points)}  min ${valueText(r.series, lo)}, max ${valueText(r.series, hi)}`;
  const shown = r.points.slice(-30);
  const rows = shown.map((p) => [new Date(p.t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z'), valueText(r.series, p.min), valueText(r.series, p.mean), valueText(r.series, p.max)]);
  const more = r.points.length > shown.length ? `\n(the last ${shown.length} of ${r.points.length} points; -o json for all)` : '';
  return `${head}\n${renderTable(['TIME', 'MIN', 'MEAN', 'MAX'], rows, { headers })}${more}`;
}

function seriesArg(value: string): HistorySeries {
  if (!(HISTORY_SERIES as readonly string[]).includes(value)) throw new InvalidArgumentError(`"${value}" is not a history series; expected one of ${HISTORY_SERIES.join(', ')}`);
  return value as HistorySeries;
}

function gpuArg(value: string): number {
  const n = Number(value);
  if (!/^\d{1,4}$/.test(value) || n > 1023) throw new InvalidArgumentError(`"${value}" is not a GPU index; expected 0 to 1023`);
  return n;
}
