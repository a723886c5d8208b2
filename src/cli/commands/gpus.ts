import { InvalidArgumentError, type Command } from 'commander';
import { formatBytes, type Gpu } from '../../domain/index.js';
import type { GpuBackend } from '../../gpu/backend.js';
import { addBackendOptions, openBackendFromFlags, type BackendFlags } from '../options.js';
import { renderTable } from '../output/table.js';

interface GpusFlags extends BackendFlags {
  readonly json?: boolean;
  readonly watch?: number | true;
}

const DEFAULT_WATCH_SECONDS = 2;

export function registerGpus(program: Command): void {
  const cmd = program
    .command('gpus')
    .description('list this machine\'s GPUs: memory, utilization, temperature, power, MIG and processes')
    .option('--json', 'print a JSON array, one object per GPU (every field, machine-readable)')
    .option('-w, --watch [seconds]', `refresh in place every N seconds (default ${DEFAULT_WATCH_SECONDS}); Ctrl-C stops`, parseInterval)
    .addHelpText('after', `
Examples:
  gpushare gpus                                  table of real GPUs (simulated if no driver is found)
  gpushare gpus --json | jq '.[].uuid'           machine-readable
  gpushare gpus --watch 1                        live view
  gpushare gpus --simulate 2xH100-80GB,1xA100-40GB
`);
  addBackendOptions(cmd).action(async (flags: GpusFlags) => {
    const { backend, notice } = openBackendFromFlags(flags);
    if (notice) process.stderr.write(`${notice}\n`);
    try {
      if (flags.watch === undefined) {
        process.stdout.write(`${render(backend, flags)}\n`);
      } else {
        await watch(backend, flags, flags.watch === true ? DEFAULT_WATCH_SECONDS : flags.watch);
      }
    } finally {
      backend.close();
    }
  });
}

function parseInterval(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.1 || n > 3600) throw new InvalidArgumentError(`"${value}" is not an interval; expected seconds from 0.1 to 3600`);
  return n;
}

function render(backend: GpuBackend, flags: GpusFlags): string {
  const gpus = backend.gpus();
  return flags.json ? JSON.stringify(gpus, null, flags.watch === undefined ? 2 : undefined) : renderGpuTable(backend.description, gpus);
}

/** Redraws until SIGINT/SIGTERM; with --json prints one JSON array per line instead of redrawing. */
async function watch(backend: GpuBackend, flags: GpusFlags, seconds: number): Promise<void> {
  const tty = process.stdout.isTTY === true && !flags.json;
  await new Promise<void>((resolve) => {
    const draw = (): void => {
      const body = render(backend, flags);
      process.stdout.write(tty ? `\x1b[H\x1b[2J${body}\n\nEvery ${seconds}s. Ctrl-C to stop.\n` : `${body}\n`);
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

/** The human table: one row per GPU, then one per MIG instance, indented under its GPU. */
export function renderGpuTable(description: string, gpus: readonly Gpu[]): string {
  const dash = '-';
  const pct = (v: number | null): string => (v === null ? dash : `${Math.round(v * 100)}%`);
  const rows: string[][] = [];
  for (const g of gpus) {
    if (g.health === 'lost') {
      rows.push([String(g.index), 'LOST', g.pciBusId ?? dash, dash, dash, dash, dash, dash, dash]);
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
    ]);
    for (const m of g.migDevices) {
      rows.push([`${g.index}/${m.index}`, `  MIG ${m.profile ?? m.name}`, m.uuid, `${formatBytes(m.memoryUsedBytes)} / ${formatBytes(m.memoryTotalBytes)}`, dash, dash, dash, dash, dash]);
    }
  }
  const table = gpus.length === 0 ? 'No GPUs found.' : renderTable(['GPU', 'MODEL', 'UUID', 'MEMORY', 'UTIL', 'TEMP', 'POWER', 'MIG', 'PROCS'], rows);
  return `Backend: ${description}\n${table}`;
}
