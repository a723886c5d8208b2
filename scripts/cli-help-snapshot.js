#!/usr/bin/env node
// Prints {"<command path>": "<its --help output>"} for every command of the built CLI; the
// fixture test/fixtures/cli-help.json is this output (see test/cli-help.test.ts).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/gpushare.js', import.meta.url));
const env = { ...process.env };
for (const k of Object.keys(env)) if (k.startsWith('GPUSHARE_')) delete env[k];
const help = (path) => spawnSync(process.execPath, [bin, ...path, '--help'], { env, encoding: 'utf8' }).stdout;

const out = {};
const paths = [[]];
for (let i = 0; i < paths.length; i += 1) {
  const text = help(paths[i]);
  out[paths[i].join(' ')] = text;
  const section = text.split(/^Commands:$/m)[1] ?? '';
  for (const line of section.split('\n')) {
    const name = /^ {2}([a-z][a-z0-9-]*)/.exec(line)?.[1];
    if (name && name !== 'help') paths.push([...paths[i], name]);
  }
}
process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
