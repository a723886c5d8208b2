import { randomBytes, createHash } from 'node:crypto';
import type { Command } from 'commander';
import type { AuditRecordBody, TenantBody } from '../../contract/schemas.js';
import { formatBytes } from '../../domain/index.js';
import { parseDuration } from '../../contract/duration.js';
import { addOutputOptions, outputOf, render, writeOut, type OutputFlags } from '../output/format.js';
import { renderTable } from '../output/table.js';
import { addNewTokenOptions } from './token.js';
import { addHostOption, clientFor } from './tasks-common.js';

interface QuotaFlags {
  readonly gpus?: string;
  readonly mem?: string;
  readonly compute?: string;
}

/** `none` removes a limit; an absent flag leaves it as it is. */
function quotaBody(flags: QuotaFlags): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  const put = (key: string, v: string | undefined): void => {
    if (v !== undefined) out[key] = v === 'none' ? null : v;
  };
  put('gpus', flags.gpus);
  put('memory', flags.mem);
  put('compute', flags.compute);
  return out;
}

function addQuotaOptions(cmd: Command): Command {
  return cmd
    .option('--gpus <n>', 'GPUs its running tasks may hold at once ("none": no limit)')
    .option('--mem <size>', 'GPU memory its running tasks may hold at once, summed over GPUs: 160Gi ("none": no limit)')
    .option('--compute <percent>', 'compute its running tasks may hold, percent of one GPU summed over GPUs: 250 ("none": no limit)');
}

export function registerTenant(program: Command): void {
  const tenant = program.command('tenant').description('tenants and their quotas (changes need the admin role)');

  addHostOption(addOutputOptions(tenant.command('ls').description('list tenants: quota and what their running tasks hold'), ['json', 'yaml', 'name'])).action(
    async (flags: OutputFlags & { host?: string }) => {
      const output = outputOf(flags);
      const tenants = await (await clientFor(flags)).json<TenantBody[]>('GET', '/v1/tenants');
      writeOut(await render(output, { items: tenants, name: (t) => `tenant/${t.name}`, table: (o) => renderTenants(tenants, o) }));
    },
  );

  addHostOption(addQuotaOptions(tenant.command('create').description('create a tenant, optionally with a quota').argument('<name>'))).action(
    async (name: string, flags: QuotaFlags & { host?: string }) => {
      const t = await (await clientFor(flags)).json<TenantBody>('POST', '/v1/tenants', { name, quota: quotaBody(flags) });
      process.stdout.write(`${renderTenants([t])}\n`);
    },
  );

  addHostOption(
    addQuotaOptions(
      tenant
        .command('set-quota')
        .description("change a tenant's quota; flags not given keep their value. Lowering it stops nothing: queued tasks wait")
        .argument('<name>'),
    ),
  ).action(async (name: string, flags: QuotaFlags & { host?: string }) => {
    const t = await (await clientFor(flags)).json<TenantBody>('PATCH', `/v1/tenants/${encodeURIComponent(name)}`, { quota: quotaBody(flags) });
    process.stdout.write(`${renderTenants([t])}\n`);
  });

  addHostOption(tenant.command('rm').description('delete a tenant and its quota (refused while it has queued or running tasks)').argument('<name>')).action(
    async (name: string, flags: { host?: string }) => {
      await (await clientFor(flags)).json('DELETE', `/v1/tenants/${encodeURIComponent(name)}`);
      process.stdout.write(`${name}\n`);
    },
  );

  addNewTokenOptions(
    tenant
      .command('token')
      .description('make a bearer token for a tenant: prints the token once, and the entry to add to "tokens" in the config file (only its sha256 is kept)'),
  )
    .action((flags: { tenant: string; role: string; expires?: string }) => {
      const token = `gs_${randomBytes(24).toString('base64url')}`;
      const sha256 = createHash('sha256').update(token).digest('hex');
      const lifetime = flags.expires === undefined ? null : parseDuration(flags.expires);
      const expiresAt = lifetime === null ? {} : { expiresAt: new Date(Date.now() + lifetime).toISOString() };
      process.stdout.write(`token (give it to the tenant; it is not stored anywhere): ${token}\n`);
      process.stdout.write(`config entry for "tokens": ${JSON.stringify({ sha256, tenant: flags.tenant, role: flags.role, ...expiresAt })}\n`);
    });
}

export function registerAudit(program: Command): void {
  const cmd = program
    .command('audit')
    .description('the audit log: every change made through the API and every refused change (admin)')
    .option('--since <seq>', 'only records after this sequence number', '0')
    .option('--limit <n>', 'at most this many records', '1000');
  addOutputOptions(cmd, ['json', 'yaml']);
  addHostOption(cmd).action(async (flags: OutputFlags & { host?: string; since: string; limit: string }) => {
    const output = outputOf(flags);
    const records = await (await clientFor(flags)).json<AuditRecordBody[]>('GET', `/v1/audit?since=${encodeURIComponent(flags.since)}&limit=${encodeURIComponent(flags.limit)}`);
    const table = ({ headers }: { readonly headers: boolean }): string => {
      if (records.length === 0) return headers ? 'No audit records.' : '';
      const rows = records.map((r) => [String(r.seq), new Date(r.at).toISOString(), r.actor, r.action, r.target ?? '-', r.result === 'ok' ? 'ok' : `${r.result}: ${r.message ?? ''}`.slice(0, 80)]);
      return renderTable(['SEQ', 'TIME', 'ACTOR', 'ACTION', 'TARGET', 'RESULT'], rows, { headers });
    };
    writeOut(await render(output, { items: records, table }));
  });
}

export function renderTenants(tenants: readonly TenantBody[], options: { readonly headers?: boolean } = {}): string {
  if (tenants.length === 0) return options.headers === false ? '' : 'No tenants.';
  const of = (used: string, limit: number | null, fmt: (n: number) => string): string => (limit === null ? `${used} / -` : `${used} / ${fmt(limit)}`);
  const pct = (milli: number): string => `${milli / 10}%`;
  const rows = tenants.map((t) => [
    t.name,
    of(String(t.usage.gpus), t.quota.gpus, String),
    of(formatBytes(t.usage.memoryBytes), t.quota.memoryBytes, formatBytes),
    of(pct(t.usage.computeMilli), t.quota.computeMilli, pct),
    String(t.running),
    String(t.queued),
  ]);
  return renderTable(['TENANT', 'GPUS', 'MEMORY', 'COMPUTE', 'RUNNING', 'QUEUED'], rows, { headers: options.headers !== false });
}
