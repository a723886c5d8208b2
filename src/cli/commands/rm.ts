import type { Command } from 'commander';
import type { RemovedTaskBody, TaskBody } from '../../contract/schemas.js';
import { LIVE_STATES } from '../../contract/task.js';
import { ErrorCodes, GsError, isGsError } from '../../domain/index.js';
import type { Client } from '../client.js';
import { addHostOption, clientFor } from './tasks-common.js';

/** How long `rm -f` waits for a killed task to end before it gives up on that one. */
const FORCE_WAIT_MS = 30_000;

export function registerRm(program: Command): void {
  const cmd = program
    .command('rm')
    .description('remove finished tasks: their records, logs and state directories (-f: kill live ones first)')
    .argument('<id...>', 'task ids or unique prefixes')
    .option('-f, --force', 'kill a task that is still queued or running (SIGKILL, no grace), then remove it')
    .addHelpText('after', `
Prints each removed id; a task that cannot be removed is named on stderr, the others still go,
and the exit status is 1.

Examples:
  gpushare rm 3f2a1c
  gpushare ps -q --filter state=failed | xargs gpushare rm
  gpushare rm -f 3f2a1c
`);
  addHostOption(cmd).action(async (ids: string[], flags: { host?: string; force?: boolean }) => {
    const client = await clientFor(flags);
    let failed = false;
    for (const id of ids) {
      try {
        const removed = await removeOne(client, id, flags.force === true);
        process.stdout.write(`${removed.id}\n`);
      } catch (err) {
        // One line per task that stays; the rest go on (docker rm's habit).
        if (!isGsError(err)) throw err;
        process.stderr.write(`gpushare: ${id}: ${err.message} [${err.code}]\n`);
        failed = true;
      }
    }
    if (failed) process.exitCode = 1;
  });
}

async function removeOne(client: Client, id: string, force: boolean): Promise<RemovedTaskBody> {
  const path = `/v1/tasks/${encodeURIComponent(id)}`;
  try {
    return await client.json<RemovedTaskBody>('DELETE', path);
  } catch (err) {
    if (!force || !isGsError(err) || err.code !== ErrorCodes.conflict) throw err;
  }
  const task = await client.json<TaskBody>('GET', path);
  if (LIVE_STATES.has(task.state) && !task.killRequested) await client.json('POST', `/v1/tasks/${task.id}/kill`, { signal: 'SIGKILL', graceSeconds: 0 });
  const deadline = Date.now() + FORCE_WAIT_MS;
  for (let t = task; LIVE_STATES.has(t.state); t = await client.json<TaskBody>('GET', `/v1/tasks/${task.id}`)) {
    if (Date.now() > deadline) throw new GsError(ErrorCodes.conflict, `task ${task.id} was killed but is still ${t.state} after ${FORCE_WAIT_MS / 1000}s; not removed`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return client.json<RemovedTaskBody>('DELETE', `/v1/tasks/${task.id}`);
}
