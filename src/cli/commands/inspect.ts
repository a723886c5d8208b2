import type { Command } from 'commander';
import type { TaskBody } from '../../contract/schemas.js';
import { addOutputOptions, outputOf, render, writeOut, type OutputFlags } from '../output/format.js';
import { addHostOption, clientFor } from './tasks-common.js';

export function registerInspect(program: Command): void {
  const cmd = program.command('inspect').description('print everything known about a task, as JSON (or -o yaml, or through --format)').argument('<id>', 'task id or a unique prefix of it');
  addOutputOptions(cmd, ['json', 'yaml', 'name'], { headers: false }).addHelpText('after', `
Examples:
  gpushare inspect 3f2a1c
  gpushare inspect 3f2a1c --format '{{.State}} {{.ExitCode}}'
  gpushare inspect 3f2a1c --format '{{json .Request}}'
`);
  addHostOption(cmd).action(async (id: string, flags: OutputFlags & { host?: string }) => {
    const output = outputOf(flags);
    const task = await (await clientFor(flags)).json<TaskBody>('GET', `/v1/tasks/${encodeURIComponent(id)}`);
    // JSON is inspect's table: the default.
    writeOut(await render(output.kind === 'table' ? { kind: 'json' } : output, { items: [task], data: task, name: (t) => `task/${t.id}`, table: () => '' }));
  });
}
