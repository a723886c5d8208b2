import type { Command } from 'commander';
import type { TaskBody } from '../../contract/schemas.js';
import { addHostOption, clientFor } from './tasks-common.js';

export function registerKill(program: Command): void {
  const cmd = program
    .command('kill')
    .description('cancel a queued task, or stop a running one (SIGTERM, then SIGKILL after the grace period)')
    .argument('<id...>', 'task ids or unique prefixes')
    .option('-s, --signal <signal>', 'signal to send first: SIGTERM (default), SIGINT, SIGKILL...')
    .option('--grace <seconds>', 'seconds before SIGKILL (default: the daemon\'s, 10)', Number);
  addHostOption(cmd).action(async (ids: string[], flags: { host?: string; signal?: string; grace?: number }) => {
    const client = await clientFor(flags);
    for (const id of ids) {
      const body = { ...(flags.signal ? { signal: flags.signal } : {}), ...(flags.grace !== undefined ? { graceSeconds: flags.grace } : {}) };
      const task = await client.json<TaskBody>('POST', `/v1/tasks/${encodeURIComponent(id)}/kill`, body);
      process.stdout.write(`${task.id}\n`);
    }
  });
}
