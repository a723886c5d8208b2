/** The daemon's own log keeps its last lines when the daemon dies (issue 17): written synchronously. */
import { spawn } from 'node:child_process';
import { expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/cli.js';

it('every line logged before a SIGKILL is in the log', async () => {
  const lines = 5000;
  // The logger serve() makes, from the build the CLI runs; a burst, then the kill, with no chance to flush.
  const script = `
    const { daemonLogger } = await import(${JSON.stringify(`${REPO_ROOT}dist/app/serve.js`)});
    const log = daemonLogger('info');
    for (let i = 0; i < ${lines}; i++) log.info({ i }, 'line');
    process.kill(process.pid, 'SIGKILL');`;
  const text = await new Promise<string>((resolve) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let out = '';
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', () => resolve(out));
  });
  const logged = text.split('\n').filter((l) => l.startsWith('{'));
  expect(logged).toHaveLength(lines);
  expect(JSON.parse(logged.at(-1) as string)).toMatchObject({ i: lines - 1, msg: 'line' });
});
