import type { Command } from 'commander';
import { addHostOption, clientFor } from './tasks-common.js';
import { finalLine, operate, Spinner } from './suspend.js';

/**
 * `gpushare move ID --gpu N[,M...]`: moves a running or suspended task's slices to other GPUs of
 * the same model (by index, one per GPU of the task), as `docker update`/`kubectl` verbs act on
 * one named object; prints one line (or JSON) once it runs there, or the daemon's reason.
 */
export function registerMove(program: Command): void {
  const move = program.command('move').argument('<id>', 'task id or unique prefix');
  move.description('move a running or suspended task to other GPUs of the same model: its memory by slice swap, its contexts through the CUDA checkpoint API (GPU pairs)');
  move.requiredOption('--gpu <indices>', "target GPU index, one per GPU of the task in its GPUs' order (comma-separated)", parseGpus);
  move.option('--json', 'print a JSON array: the state, the GPUs, the time taken and each step of the move');
  addHostOption(move).action(async (id: string, flags: { host?: string; json?: boolean; gpu: number[] }) => {
    const client = await clientFor(flags);
    const progress = process.stderr.isTTY === true ? new Spinner(process.stderr) : null;
    try {
      const outcome = await operate(client, 'move', id, progress, { gpus: flags.gpu });
      progress?.stop();
      process.stdout.write(flags.json ? `${JSON.stringify([outcome], null, 2)}\n` : `${finalLine('move', outcome)}\n`);
    } finally {
      progress?.stop();
    }
  });
}

function parseGpus(value: string): number[] {
  const parts = value.split(',').map((p) => p.trim());
  if (parts.some((p) => !/^\d+$/.test(p))) throw new Error(`--gpu: "${value}" is not a GPU index or a comma-separated list of them`);
  return parts.map(Number);
}
