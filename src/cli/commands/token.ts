import { InvalidArgumentError, Option, type Command } from 'commander';
import { parseDuration } from '../../contract/duration.js';
import type { CreatedTokenBody, TokenBody } from '../../contract/schemas.js';
import { addOutputOptions, outputOf, render, writeOut, type OutputFlags } from '../output/format.js';
import { renderTable } from '../output/table.js';
import { addHostOption, clientFor } from './tasks-common.js';

/** `30d`, checked before anything is sent. */
export function durationOption(value: string): string {
  if (parseDuration(value) === null) throw new InvalidArgumentError(`"${value}" is not a length of time; expected a whole number and s, m, h, d or w, such as 30d or 12h`);
  return value;
}

/** What a new token is: its tenant, role and lifetime (`token create`, and `tenant token` offline). */
export function addNewTokenOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--tenant <name>', 'the tenant the token acts as')
    .addOption(new Option('--role <role>', 'user: its own tasks only; admin: everything').choices(['user', 'admin']).default('user'))
    .option('--expires <duration>', 'it stops working after this long: 30d, 12h, 2w (default: never)', durationOption);
}

export function registerToken(program: Command): void {
  const token = program.command('token').description('bearer tokens for TCP clients: make, list and revoke them (admin)');

  addHostOption(
    addNewTokenOptions(token.command('create').description('make a token kept by the daemon: prints the secret once (only its sha256 is kept)')).option(
      '--max-priority <p>',
      'the highest priority a user token may submit at: low, normal (default), high or 0-1000',
    ),
  ).action(async (flags: { host?: string; tenant: string; role: string; expires?: string; maxPriority?: string }) => {
    const maxPriority = flags.maxPriority === undefined ? undefined : /^\d+$/.test(flags.maxPriority) ? Number(flags.maxPriority) : flags.maxPriority;
    const made = await (await clientFor(flags)).json<CreatedTokenBody>('POST', '/v1/tokens', { tenant: flags.tenant, role: flags.role, ...(flags.expires ? { expires: flags.expires } : {}), ...(maxPriority !== undefined ? { maxPriority } : {}) });
    process.stdout.write(`token ${made.id} for tenant ${made.tenant} (${made.role}${made.expiresAt === null ? ', does not expire' : `, expires ${new Date(made.expiresAt).toISOString()}`})\n`);
    process.stdout.write(`secret (give it to the tenant; it is not shown again): ${made.token}\n`);
  });

  addHostOption(addOutputOptions(token.command('list').description('tokens from the config file and the API, with their state'), ['json', 'yaml', 'name'])).action(
    async (flags: OutputFlags & { host?: string }) => {
      const output = outputOf(flags);
      const tokens = await (await clientFor(flags)).json<TokenBody[]>('GET', '/v1/tokens');
      const when = (t: number | null): string => (t === null ? '-' : new Date(t).toISOString().replace(/\.\d+Z$/, 'Z'));
      const table = ({ headers }: { readonly headers: boolean }): string => {
        if (tokens.length === 0) return headers ? 'No tokens.' : '';
        const rows = tokens.map((t) => [t.id, t.tenant, t.role, t.source, t.state, when(t.expiresAt), t.maxPriority === null ? '-' : String(t.maxPriority)]);
        return renderTable(['ID', 'TENANT', 'ROLE', 'SOURCE', 'STATE', 'EXPIRES', 'MAX PRIORITY'], rows, { headers });
      };
      writeOut(await render(output, { items: tokens, name: (t) => `token/${t.id}`, table }));
    },
  );

  addHostOption(token.command('revoke').description('revoke a token (from the config file or the API) by its id: refused from the next request on').argument('<id>', 'its id or a unique prefix (6+ hex digits), as `token list` shows')).action(
    async (id: string, flags: { host?: string }) => {
      const t = await (await clientFor(flags)).json<TokenBody>('POST', `/v1/tokens/${encodeURIComponent(id)}/revoke`);
      process.stdout.write(`${t.id} revoked\n`);
    },
  );
}
