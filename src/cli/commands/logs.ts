import type { Command } from 'commander';
import type { LogChunk, TaskBody } from '../../contract/schemas.js';
import { addHostOption, clientFor } from './tasks-common.js';

export function registerLogs(program: Command): void {
  const cmd = program
    .command('logs')
    .description("print a task's output (stdout to stdout, stderr to stderr)")
    .argument('<id>', 'task id or a unique prefix of it')
    .option('-f, --follow', 'keep printing until the task ends');
  addHostOption(cmd).action(async (id: string, flags: { host?: string; follow?: boolean }) => {
    const client = await clientFor(flags);
    const task = await client.json<TaskBody>('GET', `/v1/tasks/${encodeURIComponent(id)}`);
    await client.lines(`/v1/tasks/${task.id}/logs${flags.follow ? '?follow=1' : ''}`, (value) => {
      const chunk = value as LogChunk;
      (chunk.stream === 'stderr' ? process.stderr : process.stdout).write(chunk.data);
    });
  });
}
