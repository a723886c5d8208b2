/**
 * Reading GPUs directly, for the commands that do (`gpus --local`, `info`), and the backend
 * flags they and `serve` take: the CLI's one way into src/gpu (eslint.config.js names it).
 */
import { Option, type Command } from 'commander';
import { BACKEND_CHOICES } from '../gpu/choices.js';
import type { OpenedBackend } from '../gpu/open.js';

export { BACKEND_CHOICES };
export type { GpuBackend } from '../gpu/backend.js';

export interface BackendFlags {
  readonly backend?: string;
  readonly simulate?: string;
}

/** Adds `--backend` and `--simulate` (with their environment variables) to a command that reads GPUs. */
export function addBackendOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--backend <kind>', 'where GPUs come from').choices(BACKEND_CHOICES).env('GPUSHARE_BACKEND'))
    .addOption(new Option('--simulate <fleet>', 'simulate GPUs: a spec such as "2xH100-80GB,1xA100-40GB" or a file holding one').env('GPUSHARE_SIMULATE'));
}

/** Opens the backend the flags ask for; the NVML library path comes from GPUSHARE_NVML_PATH. */
export async function openBackendFromFlags(flags: BackendFlags): Promise<OpenedBackend> {
  // Loaded here, not at start-up: it pulls in koffi and both backends, which only commands
  // that read GPUs directly need.
  const { openBackend } = await import('../gpu/open.js');
  return openBackend({ backend: flags.backend, simulate: flags.simulate, nvmlPath: process.env['GPUSHARE_NVML_PATH'] });
}
