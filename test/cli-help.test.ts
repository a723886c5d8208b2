import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';

/**
 * Commands load their implementations lazily; their help must stay byte-for-byte what it was
 * when every command module was imported eagerly. The fixture was taken from that eager CLI
 * (`node scripts/cli-help-snapshot.js > test/fixtures/cli-help.json`); regenerate it only
 * for a deliberate change of help text.
 */
const expected = JSON.parse(readFileSync(new URL('./fixtures/cli-help.json', import.meta.url), 'utf8')) as Record<string, string>;

/** Every command path the CLI lists, walking `--help` output so nothing is taken from the fixture. */
function commandPaths(): string[][] {
  const paths: string[][] = [[]];
  for (let i = 0; i < paths.length; i += 1) {
    const prefix = paths[i] ?? [];
    const help = runCli([...prefix, '--help']).stdout;
    const section = help.split(/^Commands:$/m)[1] ?? '';
    for (const line of section.split('\n')) {
      const name = /^ {2}([a-z][a-z0-9-]*)/.exec(line)?.[1];
      if (name && name !== 'help') paths.push([...prefix, name]);
    }
  }
  return paths;
}

describe('gpushare --help with lazily loaded commands', () => {
  const paths = commandPaths();

  it('lists the same commands as the eager CLI', () => {
    expect(paths.map((p) => p.join(' ')).sort()).toEqual(Object.keys(expected).sort());
  });

  it.each(paths.map((p) => [p.join(' ') || '(top level)', p] as const))('%s --help is unchanged', (_label, path) => {
    const r = runCli([...path, '--help']);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(expected[path.join(' ')]);
  });
});
