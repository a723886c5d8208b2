// `gpushare simulate`'s options and help; the replay itself is in simulate-run.ts.
import type { Command } from 'commander';
import { POLICY_NAMES } from '../../scheduler/policy-names.js';
// Type only: the run itself loads when a simulation runs (below).
import type { SimulateOptions } from './simulate-run.js';

export function registerSimulate(program: Command): void {
  program
    .command('simulate')
    .description('replay a GPU-sharing trace through the scheduler and report how much it allocates')
    .requiredOption('--nodes <file>', 'node list CSV (sn,cpu_milli,memory_mib,gpu,model)')
    .requiredOption('--pods <file>', 'pod list CSV (name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,...])')
    .option(
      '--policy <names>',
      `policy, or several separated by commas to compare them; "all" for ${POLICY_NAMES.join(', ')}. ` +
        'A policy is a name or a weighted mix such as binpack+topology:0.5',
      'fragmentation',
    )
    .option('--seeds <list>', 'seeds, e.g. 42, 42-51 or 1,2,3 (one run per policy and seed)', '42')
    .option('--inflate <ratio>', 'arrivals to reach, as a multiple of GPU capacity', '1.3')
    .option('--json', 'print a JSON document instead of the table')
    .option('--placements <file>', 'write every decision as CSV (one file per run when there are several: FILE-POLICY-SEED.csv)')
    .option('--report <file>', 'write an HTML page with the allocation curves of the policies compared')
    .option(
      '--isolation <mode>',
      'isolation of GPU-sharing pods whose row has no isolation column value: time-slice, or sm-partition (each a fixed run of SMs; ' +
        'Hopper GPUs only, others refuse with notPartitionable)',
      'time-slice',
    )
    .action(async (opts: SimulateOptions) => {
      // The scheduler and the simulator load only when a simulation runs.
      const { runSimulate } = await import('./simulate-run.js');
      runSimulate(opts);
    });
}
