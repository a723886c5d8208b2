import type { Command } from 'commander';
import type { TaskBody } from '../../api/schemas.js';
import { addHostOption, clientFor } from './tasks-common.js';

/** `gpushare suspend ID...` and `gpushare resume ID...`: one line per task, its id and new state. */
export function registerSuspend(program: Command): void {
  const suspend = program
    .command('suspend')
    .description("suspend running tasks: their GPU memory goes to host memory and their processes stop, freeing the GPU (CUDA checkpoint)")
    .argument('<id...>', 'task ids or unique prefixes');
  addHostOption(suspend).action(async (ids: string[], flags: { host?: string }) => {
    const client = clientFor(flags);
    for (const id of ids) {
      const task = await client.json<TaskBody>('POST', `/v1/tasks/${encodeURIComponent(id)}/suspend`);
      process.stdout.write(`${task.id} ${task.state}\n`);
    }
  });
  const resume = program
    .command('resume')
    .description('resume suspended tasks on their GPUs (or others of the same model); without room they wait (state suspended) and resume when room returns')
    .argument('<id...>', 'task ids or unique prefixes');
  addHostOption(resume).action(async (ids: string[], flags: { host?: string }) => {
    const client = clientFor(flags);
    for (const id of ids) {
      const task = await client.json<TaskBody>('POST', `/v1/tasks/${encodeURIComponent(id)}/resume`);
      process.stdout.write(`${task.id} ${task.state === 'suspended' ? 'suspended (waiting for room; resumes by itself)' : task.state}\n`);
    }
  });
}
