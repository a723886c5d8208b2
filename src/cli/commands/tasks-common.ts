import { InvalidArgumentError, Option, type Command } from 'commander';
import { parseDuration } from '../../contract/duration.js';
import { NEXT_CURSOR_HEADER } from '../../contract/pages.js';
import type { TaskBody } from '../../contract/schemas.js';
import type { Client } from '../client.js';

/** Adds `--host` (GPUSHARE_HOST) to a command that talks to the daemon. */
export function addHostOption(cmd: Command): Command {
  return cmd
    .addOption(new Option('--host <socket|url>', 'the daemon: a Unix socket path or http(s)://host:port (GPUSHARE_TOKEN for TCP)').env('GPUSHARE_HOST'))
    .addOption(new Option('--ca-file <file>', "PEM CA that signed an https:// daemon's certificate (default: the system's CAs)").env('GPUSHARE_CA_FILE'))
    .addOption(new Option('--timeout <seconds>', 'wait this long for the daemon to answer (default 30; 0: no limit); a stream checks on it after this long silent').env('GPUSHARE_TIMEOUT'));
}

export async function clientFor(flags: { readonly host?: string; readonly caFile?: string; readonly timeout?: string }): Promise<Client> {
  // Loaded when a command talks to the daemon, so that `--help` and `--version` skip node:http.
  const { Client, resolveTarget, resolveTimeouts } = await import('../client.js');
  return new Client(resolveTarget(flags.host, process.env, flags.caFile), resolveTimeouts(flags.timeout));
}

/**
 * Every task a list query names, following the daemon's pages (X-Next-Cursor) to the end, or
 * to `max` tasks: then `more` is true. `query` is the list's query string without a cursor.
 */
export async function listTasks(client: Client, query: string, max = Infinity): Promise<{ tasks: TaskBody[]; more: boolean }> {
  const tasks: TaskBody[] = [];
  let cursor: string | null = null;
  for (;;) {
    const params = new URLSearchParams(query);
    if (cursor !== null) params.set('cursor', cursor);
    const text = params.toString();
    const page: { headers: Record<string, string | string[] | undefined>; body: TaskBody[] } = await client.exchange<TaskBody[]>('GET', `/v1/tasks${text === '' ? '' : `?${text}`}`);
    tasks.push(...page.body);
    const next = page.headers[NEXT_CURSOR_HEADER];
    cursor = typeof next === 'string' ? next : null;
    if (cursor === null) return { tasks, more: false };
    if (tasks.length >= max) return { tasks: tasks.slice(0, max), more: true };
  }
}

/**
 * A point in time typed on the command line: a length of time back from `now` (`10m`, `24h`,
 * `7d`: contract/duration.ts), or an RFC 3339 time (`2026-12-06T20:00:00Z`). Epoch ms.
 */
export function parseTimeArg(value: string, now: number): number | null {
  const back = parseDuration(value);
  if (back !== null) return now - back;
  if (!/^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?)?$/.test(value.trim())) return null;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : at;
}

/** The commander parser for parseTimeArg: checked at once, resolved against the clock when used. */
export function timeOption(value: string): string {
  if (parseTimeArg(value, 0) === null) throw new InvalidArgumentError(`"${value}" is not a time; expected a length of time back from now (10m, 24h, 7d) or an RFC 3339 time (2026-12-06T20:00:00Z)`);
  return value;
}
