import { writeFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { ErrorCodes, GsError, isGsError } from '../../domain/index.js';
import { addHostOption, clientFor, listTasks, parseTimeArg, timeOption } from './tasks-common.js';

interface ReportFlags {
  readonly host?: string;
  readonly since: string;
  readonly until?: string;
  readonly format?: 'html' | 'md' | 'json';
  readonly output?: string;
}

export function registerReport(program: Command): void {
  const cmd = program
    .command('report')
    .description('a usage report over a window: GPUs, tenants, top tasks, waits, suspensions, alerts (HTML with charts, Markdown or JSON)')
    .option('--since <time>', 'the window\'s start: a length of time back (24h, 7d) or an RFC 3339 time', timeOption, '24h')
    .option('--until <time>', 'the window\'s end (default now)', timeOption)
    .addOption(new Option('--format <format>', 'html (one file, charts as inline SVG), md or json (default: from -o\'s extension, else md)').choices(['html', 'md', 'json']))
    .option('-o, --output <file>', 'write the report here instead of to stdout');
  cmd.addHelpText('after', `
Everything comes from the daemon's API (history, tasks, events, alerts), so a report can be made
wherever the API answers; a user token's report covers its own tenant's tasks and the fleet's GPUs.
GPU utilization and memory are the mean, p95 and max over the window's history points (raw
within the last hour, per minute within a week, per hour beyond); GPU-time is the wall time a
task held its GPUs, times how many it held.

Examples:
  gpushare report                                  the last 24 h as Markdown on stdout
  gpushare report --since 7d -o week.html          one HTML file with charts
  gpushare report --since 2026-12-01T00:00:00Z --until 2026-12-02T00:00:00Z --format json
`);
  addHostOption(cmd).action(async (flags: ReportFlags) => {
    const now = Date.now();
    const from = parseTimeArg(flags.since, now) as number;
    const to = flags.until === undefined ? now : (parseTimeArg(flags.until, now) as number);
    if (to <= from) throw new GsError(ErrorCodes.invalidArgument, `--until (${flags.until}) is not after --since (${flags.since})`);
    const format = flags.format ?? formatOfFile(flags.output) ?? 'md';
    const client = await clientFor(flags);
    // The report's code is pure (it reads the API's answers, nothing of the daemon): eslint.config.js allows it here.
    const { buildReport, gatherReportInputs, renderReport } = await import('../../monitor/report/index.js');
    const api = {
      get: async <T>(path: string): Promise<T | null> => {
        try {
          return await client.json<T>('GET', path);
        } catch (err) {
          if (isGsError(err) && err.code === ErrorCodes.notFound) return null;
          throw err;
        }
      },
      tasks: async (query: string) => (await listTasks(client, query)).tasks,
    };
    const report = buildReport(await gatherReportInputs(api, { from, to, now }, client.where));
    const text = renderReport(report, format);
    if (flags.output === undefined) {
      process.stdout.write(text);
      return;
    }
    writeFileSync(flags.output, text);
    process.stderr.write(`gpushare report: ${format} report of ${report.tasksInWindow} tasks on ${report.gpus.length} GPUs written to ${flags.output}\n`);
  });
}

function formatOfFile(path: string | undefined): 'html' | 'md' | 'json' | undefined {
  if (path === undefined) return undefined;
  if (/\.html?$/i.test(path)) return 'html';
  if (/\.json$/i.test(path)) return 'json';
  if (/\.(md|markdown)$/i.test(path)) return 'md';
  return undefined;
}
