import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import type { GpusResponse } from '../../contract/schemas.js';
import { ErrorCodes, formatBytes, isGsError, type Gpu } from '../../domain/index.js';
import { defaultSocketPath } from '../../contract/paths.js';
import type { Client } from '../client.js';
import { addBackendOptions, openBackendFromFlags, type BackendFlags, type GpuBackend } from '../options.js';
import { addOutputOptions, outputOf, render as renderOutput, type Output, type OutputFlags } from '../output/format.js';
import { renderTable } from '../output/table.js';
import { describeGpuHold } from './gpu.js';

interface GpusFlags extends BackendFlags, OutputFlags {
  readonly watch?: number | true;
  readonly host?: string;
  readonly local?: boolean;
}

/** Where GPUs are read from: the daemon (with its slices), or this machine directly. */
type Source = { readonly kind: 'daemon'; readonly client: Client; readonly where: string } | { readonly kind: 'local'; readonly backend: GpuBackend };

const DEFAULT_WATCH_SECONDS = 2;

export function registerGpus(program: Command): void {
  const cmd = program
    .command('gpus')
    .description('list this machine\'s GPUs: memory, utilization, temperature, power, MIG and processes')
    .option('-w, --watch [seconds]', `refresh in place every N seconds (default ${DEFAULT_WATCH_SECONDS}); Ctrl-C stops`, parseInterval)
    .option('--host <socket|url>', 'ask this daemon (GPUSHARE_HOST): GPUs with the slices placed on them and their usage')
    .option('--local', 'read this machine\'s GPUs directly, even when a daemon runs');
  addOutputOptions(cmd).addHelpText('after', `
With a daemon reachable (--host, GPUSHARE_HOST, or the default socket), each GPU is followed by
its slices: task, tenant, memory reserved and used, compute reserved and achieved. Without one,
or with --local, --backend or --simulate, the GPUs are read directly. Where they come from (the
"Backend:" line) goes to stderr, so stdout is the table alone; -o wide adds PCI bus, NUMA node
and compute capability.

Examples:
  gpushare gpus                                  GPUs and slices from the daemon, else this machine's GPUs
  gpushare gpus -o json | jq '.[].uuid'          machine-readable
  gpushare gpus --format '{{.Index}} {{.Uuid}}'  one line per GPU
  gpushare gpus --watch 1                        live view
  gpushare gpus --simulate 2xH100-80GB,1xA100-40GB
`);
  addBackendOptions(cmd).action(async (flags: GpusFlags) => {
    const output = outputOf(flags);
    const source = await chooseSource(flags);
    try {
      if (flags.watch === undefined) {
        const frame = await render(source, output, false);
        if (frame.backend !== null) process.stderr.write(`Backend: ${frame.backend}\n`);
        if (frame.body !== '') process.stdout.write(`${frame.body}\n`);
      } else {
        await watch(source, output, flags.watch === true ? DEFAULT_WATCH_SECONDS : flags.watch);
      }
    } finally {
      if (source.kind === 'local') source.backend.close();
    }
  });
}

/**
 * The daemon when one was named or answers on the default socket; otherwise this machine. A
 * daemon that was named but does not answer is an error, not a silent switch to other GPUs.
 */
async function chooseSource(flags: GpusFlags): Promise<Source> {
  const named = flags.host ?? process.env['GPUSHARE_HOST'];
  if (!flags.local && flags.backend === undefined && flags.simulate === undefined) {
    if (named !== undefined || existsSync(defaultSocketPath(process.env, userInfo().uid))) {
      const { Client, resolveTarget } = await import('../client.js');
      const target = resolveTarget(named);
      const client = new Client(target);
      try {
        await client.json('GET', '/v1/gpus');
        return { kind: 'daemon', client, where: target.kind === 'unix' ? target.path : target.url.origin };
      } catch (err) {
        if (named !== undefined || !(isGsError(err) && err.code === ErrorCodes.daemonUnreachable)) throw err;
      }
    }
  }
  const { backend, notice } = await openBackendFromFlags(flags);
  if (notice) process.stderr.write(`${notice}\n`);
  return { kind: 'local', backend };
}

function parseInterval(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.1 || n > 3600) throw new InvalidArgumentError(`"${value}" is not an interval; expected seconds from 0.1 to 3600`);
  return n;
}

/** One reading in the asked form, and (for tables) where the GPUs came from, to print apart from it. */
async function render(source: Source, output: Output, watching: boolean): Promise<{ body: string; backend: string | null }> {
  const table = output.kind === 'table' || output.kind === 'wide';
  let body: string;
  let backend: string;
  if (source.kind === 'daemon') {
    const r = await source.client.json<GpusResponse>('GET', '/v1/gpus');
    backend = `${r.description} (daemon at ${source.where})`;
    body = await renderOutput(output, { items: r.gpus, name: (g) => `gpu/${g.uuid}`, table: (o) => renderSliceTable(r.gpus, o) });
  } else {
    const gpus = source.backend.gpus();
    backend = source.backend.description;
    body = await renderOutput(output, { items: gpus, name: (g) => `gpu/${g.uuid}`, table: (o) => renderGpuTable(gpus, o) });
  }
  // Watching JSON: one array a line, so each reading is one line to a reader.
  if (watching && output.kind === 'json') body = JSON.stringify(JSON.parse(body));
  return { body, backend: table ? backend : null };
}

/** Redraws until SIGINT/SIGTERM; other than a table on a terminal, prints one reading after another instead of redrawing. */
async function watch(source: Source, output: Output, seconds: number): Promise<void> {
  const tty = process.stdout.isTTY === true && (output.kind === 'table' || output.kind === 'wide');
  await new Promise<void>((resolve, reject) => {
    const draw = (): void => {
      render(source, output, true).then(({ body, backend }) => {
        if (tty) process.stdout.write(`\x1b[H\x1b[2JBackend: ${backend ?? ''}\n${body}\n\nEvery ${seconds}s. Ctrl-C to stop.\n`);
        else if (body !== '') process.stdout.write(`${body}\n`);
      }, (err: unknown) => {
        stop();
        reject(err instanceof Error ? err : new Error(String(err)));
      });
    };
    const timer = setInterval(draw, seconds * 1000);
    const stop = (): void => {
      clearInterval(timer);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    draw();
  });
}

/** A 0-1 ratio as a whole percent, or a dash when the GPU cannot say. */
const pct = (v: number | null): string => (v === null ? '-' : `${Math.round(v * 100)}%`);

interface TableOptions {
  readonly wide?: boolean;
  readonly headers?: boolean;
}

/** -o wide's columns of a GPU: where it is and what it can run. */
const wideCells = (g: Pick<Gpu, 'index'>): string[] => ['pciBusId', 'numaNode', 'computeCapability'].map((k) => (g as Readonly<Record<string, unknown>>)[k]).map((v) => (typeof v === 'string' || typeof v === 'number' ? String(v) : '-'));
const WIDE_HEADERS = ['PCI BUS', 'NUMA', 'CC'];

/**
 * The human table: one row per GPU, then one per MIG instance, indented under its GPU. The
 * caller says where the GPUs came from (`Backend:`), on stderr or above it.
 */
export function renderGpuTable(gpus: readonly Gpu[], options: TableOptions = {}): string {
  const dash = '-';
  const wide = options.wide === true;
  const rows: string[][] = [];
  for (const g of gpus) {
    if (g.health === 'lost') {
      rows.push([String(g.index), 'LOST', g.pciBusId ?? dash, dash, dash, dash, dash, dash, dash, ...(wide ? wideCells(g) : [])]);
      continue;
    }
    rows.push([
      String(g.index),
      g.model,
      g.uuid,
      `${formatBytes(g.memoryUsedBytes)} / ${formatBytes(g.memoryTotalBytes)}`,
      pct(g.utilizationGpu),
      g.temperatureC === null ? dash : `${g.temperatureC}C`,
      g.powerDrawWatts === null ? dash : `${Math.round(g.powerDrawWatts)}/${g.powerLimitWatts === null ? '?' : Math.round(g.powerLimitWatts)} W`,
      g.migMode === 'enabled' ? `on (${g.migDevices.length})` : g.migMode === 'disabled' ? 'off' : dash,
      String(g.processes.length),
      ...(wide ? wideCells(g) : []),
    ]);
    for (const m of g.migDevices) {
      rows.push([`${g.index}/${m.index}`, `  MIG ${m.profile ?? m.name}`, m.uuid, `${formatBytes(m.memoryUsedBytes)} / ${formatBytes(m.memoryTotalBytes)}`, dash, dash, dash, dash, dash, ...(wide ? [dash, dash, dash] : [])]);
    }
  }
  if (gpus.length === 0) return options.headers === false ? '' : 'No GPUs found.';
  return renderTable(['GPU', 'MODEL', 'UUID', 'MEMORY', 'UTIL', 'TEMP', 'POWER', 'MIG', 'PROCS', ...(wide ? WIDE_HEADERS : [])], rows, { headers: options.headers !== false });
}

type DaemonGpu = GpusResponse['gpus'][number];

/**
 * The daemon's view: one row per GPU (memory used on the device, reserved by slices, compute
 * reserved), then one row per slice under it: its task, tenant, and reserved vs used.
 */
export function renderSliceTable(gpus: readonly DaemonGpu[], options: TableOptions = {}): string {
  const dash = '-';
  const wide = options.wide === true;
  const rows: string[][] = [];
  for (const g of gpus) {
    if (g.health === 'lost') {
      rows.push([String(g.index), 'LOST', dash, dash, dash, dash, dash, ...(wide ? wideCells(g) : [])]);
      continue;
    }
    rows.push([
      String(g.index),
      g.model,
      dash,
      `${formatBytes(g.memoryUsedBytes)} / ${formatBytes(g.memoryTotalBytes)}`,
      `${formatBytes(g.allocatedMemoryBytes)} / ${formatBytes(g.memoryTotalBytes)}`,
      `${g.allocatedComputeMilli / 10}%`,
      `${g.slices.length} slice${g.slices.length === 1 ? '' : 's'}, util ${pct(g.utilizationGpu)}`,
      ...(wide ? wideCells(g) : []),
    ]);
    const hold = describeGpuHold(g);
    if (hold !== null) rows.push(['', '', '', '', '', '', `no new work: ${hold}`, ...(wide ? [dash, dash, dash] : [])]);
    for (const s of g.slices) {
      rows.push([
        '',
        `  ${s.taskId ?? '(another tenant)'}`,
        s.tenant ?? dash,
        s.usedMemoryBytes === null ? dash : formatBytes(s.usedMemoryBytes),
        formatBytes(s.memoryBytes),
        s.computeMilli === 0 ? 'best effort' : `${s.computeMilli / 10}%`,
        s.computeShare === null ? dash : `achieved ${pct(s.computeShare)}`,
        ...(wide ? [dash, dash, dash] : []),
      ]);
    }
  }
  if (gpus.length === 0) return options.headers === false ? '' : 'No GPUs found.';
  return renderTable(['GPU', 'MODEL / TASK', 'TENANT', 'MEM USED', 'MEM RESERVED', 'COMPUTE', 'USAGE', ...(wide ? WIDE_HEADERS : [])], rows, { headers: options.headers !== false });
}
