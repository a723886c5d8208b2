import type { Command } from 'commander';
import type { TaskBody } from '../../contract/schemas.js';
import { addHostOption, clientFor } from './tasks-common.js';

export function registerInspect(program: Command): void {
  const cmd = program.command('inspect').description('print everything known about a task, as JSON').argument('<id>', 'task id or a unique prefix of it');
  addHostOption(cmd).action(async (id: string, flags: { host?: string }) => {
    const task = await (await clientFor(flags)).json<TaskBody>('GET', `/v1/tasks/${encodeURIComponent(id)}`);
    process.stdout.write(`${JSON.stringify(task, null, 2)}\n`);
  });
}
