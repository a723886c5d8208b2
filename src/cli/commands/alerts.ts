/**
 * `gpushare alerts`: what fires now (with --all, what resolved too; -f follows them), and
 * `gpushare silence add|ls|rm`: quieting alerts that are known (admins make and end silences).
 */
import { InvalidArgumentError, type Command } from 'commander';
import { SILENCE_FIELDS } from '../../contract/alert-names.js';
import type { Silence, SilenceMatcher } from '../../contract/alerts.js';
import { parseDuration } from '../../contract/duration.js';
import type { AlertEvent } from '../../contract/monitor.js';
import { ErrorCodes, GsError } from '../../domain/index.js';
import { addOutputOptions, outputOf, render, writeOut, type OutputFlags } from '../output/format.js';
import { renderTable } from '../output/table.js';
import { addHostOption, clientFor, parseTimeArg, timeOption } from './tasks-common.js';

/** How long ago, in the largest whole unit: `3m`, `2h`, `5d`. */
function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

function subjectText(a: AlertEvent): string {
  const parts: string[] = [];
  if (a.subject.gpu !== undefined) parts.push(`gpu ${a.subject.gpu}`);
  if (a.subject.task !== undefined) parts.push(`task ${a.subject.task}`);
  if (a.subject.tenant !== undefined) parts.push(`tenant ${a.subject.tenant}`);
  return parts.join(', ') || '-';
}

export function renderAlerts(alerts: readonly AlertEvent[], now: number, options: { readonly headers?: boolean } = {}): string {
  if (alerts.length === 0) return options.headers === false ? '' : 'No alerts.';
  const rows = alerts.map((a) => [
    a.id,
    a.severity.toUpperCase(),
    a.state === 'firing' ? `firing ${ago(now - a.startedAt)}` : `resolved ${ago(now - (a.resolvedAt ?? now))} ago`,
    a.rule,
    subjectText(a),
    `${a.summary}${a.silenced ? ' (silenced)' : ''}`,
  ]);
  return renderTable(['ID', 'SEVERITY', 'STATE', 'RULE', 'SUBJECT', 'SUMMARY'], rows, options);
}

/** `rule=gpu-xid`, `gpu=0`: one matcher of a silence. */
export function matcherOption(value: string, previous: SilenceMatcher[] = []): SilenceMatcher[] {
  const m = /^([a-z]+)=(.+)$/.exec(value);
  if (!m || !(SILENCE_FIELDS as readonly string[]).includes(m[1] as string)) throw new InvalidArgumentError(`"${value}" is not a matcher; expected NAME=VALUE with NAME one of ${SILENCE_FIELDS.join(', ')} (rule=gpu-xid, gpu=0)`);
  return [...previous, { name: m[1] as SilenceMatcher['name'], value: m[2] as string }];
}

function renderSilences(silences: readonly Silence[], now: number, options: { readonly headers?: boolean } = {}): string {
  if (silences.length === 0) return options.headers === false ? '' : 'No silences.';
  const rows = silences.map((s) => [s.id, s.matchers.map((m) => `${m.name}=${m.value}`).join(','), s.expired ? `ended ${ago(now - s.until)} ago` : `${ago(s.until - now)} left`, s.createdBy, s.comment || '-']);
  return renderTable(['ID', 'MATCHERS', 'UNTIL', 'BY', 'COMMENT'], rows, options);
}

export function registerAlerts(program: Command): void {
  const cmd = program
    .command('alerts')
    .description('alerts firing now (a user sees those of its tenant\'s tasks and of the GPUs); --all: the resolved ones kept too')
    .option('-a, --all', 'resolved alerts too, newest change first')
    .option('--since <time>', 'only alerts that fired or resolved since then: 10m, 24h, or an RFC 3339 time', timeOption)
    .option('-f, --follow', 'then print each alert as it fires or resolves (one JSON object a line with -o json)');
  addOutputOptions(cmd, ['json', 'yaml']);
  addHostOption(cmd).action(async (flags: OutputFlags & { host?: string; all?: boolean; since?: string; follow?: boolean }) => {
    const output = outputOf(flags);
    const client = await clientFor(flags);
    const params = new URLSearchParams({ state: flags.all ? 'all' : 'firing' });
    if (flags.since !== undefined) params.set('since', String(parseTimeArg(flags.since, Date.now())));
    if (flags.follow) {
      if (output.kind === 'yaml' || output.kind === 'template') throw new GsError(ErrorCodes.invalidArgument, '--follow prints one alert a line: as a table, or -o json');
      const json = output.kind === 'json';
      params.set('follow', '1');
      await client.lines(`/v1/alerts?${params.toString()}`, (value) => {
        const a = value as AlertEvent;
        process.stdout.write(json ? `${JSON.stringify(a)}\n` : `${new Date(a.resolvedAt ?? a.startedAt).toISOString()}  ${a.state.padEnd(8)} ${a.severity.padEnd(8)} ${a.rule}  ${a.summary}${a.silenced ? ' (silenced)' : ''}\n`);
      });
      return;
    }
    const { alerts } = await client.json<{ alerts: AlertEvent[] }>('GET', `/v1/alerts?${params.toString()}`);
    const now = Date.now();
    writeOut(await render(output, { items: alerts, table: (o) => renderAlerts(alerts, now, o) }));
  });
}

export function registerSilence(program: Command): void {
  const silence = program.command('silence').description('silences: alerts they match are listed as silenced and not sent to webhooks (add and rm need the admin role)');

  addHostOption(
    silence
      .command('add')
      .description('silence the alerts that match every --match, for a while')
      .requiredOption('-m, --match <name=value>', `what to match, repeatable: ${SILENCE_FIELDS.join(', ')} (rule=gpu-temperature-warning, gpu=0)`, matcherOption)
      .requiredOption('--for <duration>', 'how long: 30m, 2h, 1d')
      .option('-c, --comment <text>', 'why (shown in `silence ls`)', ''),
  ).action(async (flags: { host?: string; match: SilenceMatcher[]; for: string; comment: string }) => {
    const length = parseDuration(flags.for);
    if (length === null) throw new GsError(ErrorCodes.invalidArgument, `--for: "${flags.for}" is not a length of time; expected a whole number followed by s, m, h, d or w (2h)`);
    const made = await (await clientFor(flags)).json<Silence>('POST', '/v1/silences', { matchers: flags.match, until: Date.now() + length, comment: flags.comment });
    process.stdout.write(`${made.id}\n`);
  });

  const ls = silence.command('ls').description('silences in force; --all: those ended in the last week too').option('-a, --all', 'ended ones too');
  addOutputOptions(ls, ['json', 'yaml']);
  addHostOption(ls).action(async (flags: OutputFlags & { host?: string; all?: boolean }) => {
    const output = outputOf(flags);
    const { silences } = await (await clientFor(flags)).json<{ silences: Silence[] }>('GET', `/v1/silences${flags.all ? '?all=1' : ''}`);
    const now = Date.now();
    writeOut(await render(output, { items: silences, table: (o) => renderSilences(silences, now, o) }));
  });

  addHostOption(silence.command('rm').description('end a silence now').argument('<id>')).action(async (id: string, flags: { host?: string }) => {
    await (await clientFor(flags)).json('DELETE', `/v1/silences/${encodeURIComponent(id)}`);
    process.stdout.write(`${id}\n`);
  });
}
