/**
 * `gpushare completion bash|zsh|fish`: generated from the command tree, so every command and
 * option is in each script; each parses in its shell, and completes as a user would see it.
 * The shells that are not installed are skipped, saying so.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../src/cli/main.js';
import { commandTree, SHELLS, type CommandNode } from '../src/cli/output/completion.js';
import { runCli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'gpushare-completion-'));
const scripts = Object.fromEntries(SHELLS.map((shell) => [shell, runCli(['completion', shell]).stdout])) as Record<(typeof SHELLS)[number], string>;
const has = (shell: string): boolean => spawnSync(shell, ['-c', 'true']).status === 0;
const scriptFile = (shell: string): string => {
  const path = join(dir, `gpushare.${shell}`);
  writeFileSync(path, scripts[shell as keyof typeof scripts]);
  return path;
};

const walk = (n: CommandNode): CommandNode[] => [n, ...n.subcommands.flatMap(walk)];
const nodes = walk(commandTree(await buildProgram()));

describe('gpushare completion', () => {
  it('knows the whole tree (commands, subcommands, options with their choices)', () => {
    const paths = nodes.map((n) => n.path.join(' '));
    for (const p of ['ps', 'rm', 'prune', 'completion', 'tenant ls', 'token list', 'top']) expect(paths).toContain(p);
    const ps = nodes.find((n) => n.path.join(' ') === 'ps');
    expect(ps?.options.find((o) => o.flags.includes('--output'))?.choices).toEqual(['json', 'yaml', 'wide', 'name']);
    expect(ps?.takesTaskId).toBe(false);
    expect(nodes.filter((n) => n.takesTaskId).map((n) => n.path.join(' ')).sort()).toEqual(['inspect', 'kill', 'logs', 'move', 'resume', 'rm', 'suspend']);
  });

  it.each(SHELLS)('the %s script holds every command, option and choice', (shell) => {
    const script = scripts[shell];
    expect(script.length).toBeGreaterThan(1000);
    for (const n of nodes) {
      for (const s of n.subcommands) expect(script).toContain(s.path[s.path.length - 1]);
      for (const o of n.options) {
        // fish names options without their dashes (-s a -l all).
        for (const f of o.flags) expect(script).toContain(shell === 'fish' ? (f.startsWith('--') ? `-l ${f.slice(2)}` : `-s ${f.slice(1)}`) : f);
        for (const c of o.choices ?? []) expect(script).toContain(c);
      }
    }
  });

  it('refuses a shell it has no script for', () => {
    const r = runCli(['completion', 'tcsh']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/Allowed choices are bash, zsh, fish/);
  });

  describe.each(SHELLS)('%s', (shell) => {
    // Skipped, visibly, where the shell is not installed.
    it.skipIf(!has(shell))(`${shell} -n parses it${has(shell) ? '' : ` (skipped: ${shell} is not installed here)`}`, () => {
      const r = spawnSync(shell, ['-n', scriptFile(shell)], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    });
  });

  const cases: readonly [string[], string[]][] = [
    [['gpushare', 'p'], ['prune', 'ps']],
    [['gpushare', 'ps', '--f'], ['--filter', '--format']],
    [['gpushare', 'ps', '-o', ''], ['json', 'name', 'wide', 'yaml']],
    [['gpushare', '--host', '/x', 'gpus', '-o', 'w'], ['wide']],
    [['gpushare', 'tenant', ''], ['create', 'ls', 'rm', 'set-quota', 'token']],
    [['gpushare', 'tenant', 'ls', '--n'], ['--no-headers']],
    [['gpushare', 'top', '-o', ''], ['json', 'yaml']],
    [['gpushare', 'completion', ''], ['bash', 'fish', 'zsh']],
  ];

  it.skipIf(!has('bash')).each(cases)('bash completes %j to %j (skipped where bash is not installed)', (words, expected) => {
    const program = `source ${scriptFile('bash')}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _gpushare; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const r = spawnSync('bash', ['-c', program], { encoding: 'utf8' });
    expect(r.stdout.split('\n').filter((l) => l !== '').sort()).toEqual(expected);
  });

  it.skipIf(!has('zsh')).each(cases)('zsh completes %j to %j (skipped where zsh is not installed)', (words, expected) => {
    // The completion system's functions stubbed to print what they are given.
    const stubs = `compdef() { :; }; compadd() { [[ $1 == -- ]] && shift; printf '%s\\n' "$@"; }; _describe() { local e; for e in "\${(@P)4}"; do printf '%s\\n' "\${e%%:*}"; done; }; _files() { :; }`;
    const program = `${stubs}; source ${scriptFile('zsh')}; words=(${words.map((w) => `'${w}'`).join(' ')}); CURRENT=${words.length}; _gpushare | grep -- '^${(words[words.length - 1] ?? '').replace(/-/g, '\\-')}'`;
    const r = spawnSync('zsh', ['-f', '-c', program], { encoding: 'utf8' });
    expect(r.stdout.split('\n').filter((l) => l !== '').sort()).toEqual(expected);
  });

  it.skipIf(!has('fish')).each(cases)('fish completes %j to %j (skipped where fish is not installed)', (words, expected) => {
    const r = spawnSync('fish', ['--no-config', '-c', `source ${scriptFile('fish')}; complete -C '${words.join(' ')}'`], { encoding: 'utf8' });
    expect(r.stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t')[0]).sort()).toEqual(expected);
  });
});
