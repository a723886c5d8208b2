import type { Command } from 'commander';
import { addBackendOptions, openBackendFromFlags, type BackendFlags } from '../options.js';
import { VERSION } from '../version.js';
import { renderGpuTable } from './gpus.js';

export function registerInfo(program: Command): void {
  const cmd = program
    .command('info')
    .description('what gpushare sees on this machine (backend, driver, GPUs) and where to go next');
  addBackendOptions(cmd).action(async (flags: BackendFlags) => {
    const { backend, notice } = await openBackendFromFlags(flags);
    try {
      const sys = backend.system();
      const lines = [
        `gpushare ${VERSION}`,
        `Backend:      ${backend.kind === 'simulated' ? 'SIMULATED (no real GPU is used)' : 'NVML'}`,
        `Driver:       ${sys.driverVersion ?? '-'}   CUDA: ${sys.cudaDriverVersion ?? '-'}   NVML: ${sys.nvmlVersion ?? '-'}`,
        '',
        `Backend: ${backend.description}`,
        renderGpuTable(backend.gpus()),
        '',
        'Next:',
        '  gpushare gpus --watch          live view of the GPUs',
        '  gpushare gpus --json           the same, machine-readable',
        '  gpushare --help                every command',
      ];
      if (notice) lines.splice(1, 0, `Note:         ${notice}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    } finally {
      backend.close();
    }
  });
}
