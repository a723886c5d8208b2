/** `gpushare gpu cordon|uncordon|ls`: an admin keeps new work off a GPU (or lets it back), and sees which GPUs are held and why. */
import type { Command } from 'commander';
import type { GpuHealthBody, GpusResponse } from '../../contract/schemas.js';
import { addOutputOptions, outputOf, render, writeOut, type OutputFlags } from '../output/format.js';
import { renderTable } from '../output/table.js';
import { addHostOption, clientFor } from './tasks-common.js';

type HealthFields = Pick<GpuHealthBody, 'cordon' | 'fault'>;

export function registerGpu(program: Command): void {
  const gpu = program.command('gpu').description('cordon and uncordon GPUs: no new placements on a cordoned or faulted GPU, running tasks untouched (changes need the admin role)');

  addHostOption(
    gpu
      .command('cordon')
      .description('keep new work off a GPU (by index or UUID) until it is uncordoned; its running tasks go on')
      .argument('<gpu>', 'GPU index (0, 1, ...) or UUID (GPU-...)')
      .option('--note <text>', 'why, shown by gpushare gpus and in the reason queued tasks give'),
  ).action(async (which: string, flags: { note?: string; host?: string }) => {
    const body = flags.note === undefined ? {} : { note: flags.note };
    const g = await (await clientFor(flags)).json<GpuHealthBody>('POST', `/v1/gpus/${encodeURIComponent(which)}/cordon`, body);
    process.stdout.write(`GPU ${g.index} (${g.uuid}): ${describeGpuHold(g) ?? 'ok'}\n`);
  });

  addHostOption(
    gpu
      .command('uncordon')
      .description('let new work onto a GPU again: lifts its cordon and clears its fault (an XID or ECC error the daemon saw)')
      .argument('<gpu>', 'GPU index (0, 1, ...) or UUID (GPU-...)'),
  ).action(async (which: string, flags: { host?: string }) => {
    const g = await (await clientFor(flags)).json<GpuHealthBody>('POST', `/v1/gpus/${encodeURIComponent(which)}/uncordon`);
    process.stdout.write(`GPU ${g.index} (${g.uuid}): ${describeGpuHold(g) ?? 'takes new work'}\n`);
  });

  addHostOption(addOutputOptions(gpu.command('ls').description('list GPUs with their cordon and fault'), ['json', 'yaml', 'name'])).action(async (flags: OutputFlags & { host?: string }) => {
    const r = await (await clientFor(flags)).json<GpusResponse>('GET', '/v1/gpus');
    const items = r.gpus.map((g) => ({ index: g.index, uuid: g.uuid, model: g.model, health: g.health, cordoned: g.cordoned, cordon: g.cordon, fault: g.fault }));
    writeOut(await render(outputOf(flags), { items, name: (g) => `gpu/${g.uuid}`, table: (o) => renderHealthTable(items, o) }));
  });
}

/** `cordoned by alice: fan`, `unhealthy: XID 79`, both joined by `; `; null for a GPU that takes new work. */
export function describeGpuHold(g: HealthFields): string | null {
  const parts: string[] = [];
  if (g.cordon !== null) parts.push(`cordoned by ${g.cordon.by}${g.cordon.note === null ? '' : `: ${g.cordon.note}`}`);
  if (g.fault !== null) parts.push(`unhealthy: ${g.fault.kind === 'xid' ? 'XID' : 'uncorrectable ECC errors'}${g.fault.code === null ? '' : ` ${g.fault.code}`}`);
  return parts.length === 0 ? null : parts.join('; ');
}

function renderHealthTable(gpus: readonly (HealthFields & Pick<GpusResponse['gpus'][number], 'index' | 'uuid' | 'model' | 'health'>)[], options: { readonly headers?: boolean }): string {
  const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
  const rows = gpus.map((g) => {
    const since = g.cordon?.at ?? g.fault?.at;
    return [String(g.index), g.model, g.uuid, g.health === 'lost' ? 'LOST' : (describeGpuHold(g) ?? 'ok'), since === undefined ? '-' : iso(since)];
  });
  if (gpus.length === 0) return options.headers === false ? '' : 'No GPUs found.';
  return renderTable(['GPU', 'MODEL', 'UUID', 'STATUS', 'SINCE'], rows, { headers: options.headers !== false });
}
