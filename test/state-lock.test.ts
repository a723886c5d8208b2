/**
 * The state directory's lock with real daemons: a second `gpushare serve` on one directory is
 * refused before it opens anything, naming the first; a SIGKILLed daemon does not block the next.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Client } from '../src/cli/client.js';
import { REPO_ROOT } from './helpers/cli.js';

const BIN = `${REPO_ROOT}bin/gpushare.js`;
const dir = mkdtempSync(join(tmpdir(), 'gpushare-lock-'));
const stateDir = join(dir, 'state');
const started = new Set<ChildProcess>();

function serve(socket: string): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('GPUSHARE_')) delete env[k];
  const child = spawn(process.execPath, [BIN, 'serve', '--backend', 'simulated', '--simulate', '1xH100-80GB', '--state-dir', stateDir, '--listen', socket, '--sandbox', 'off', '--log-level', 'warn'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exit };
}

async function answers(socket: string, deadline = Date.now() + 15_000): Promise<void> {
  const client = new Client({ kind: 'unix', path: socket });
  for (;;) {
    try {
      await client.json('GET', '/v1/gpus');
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Every file under the state directory with its size and modification time. */
function snapshot(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(stateDir, { recursive: true }) as string[]) {
    const st = statSync(join(stateDir, name));
    out[name] = `${st.size}@${st.mtimeMs}`;
  }
  return out;
}

afterAll(() => {
  for (const c of started) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('one daemon per state directory', () => {
  it('refuses a second daemon naming the first, opening nothing; a SIGKILLed first does not block the next', async () => {
    const first = serve(join(dir, 'a.sock'));
    await answers(join(dir, 'a.sock'));
    // Stopped, so that only the second daemon could change a file (the first checkpoints its WAL).
    const firstPid = first.child.pid ?? -1;
    process.kill(firstPid, 'SIGSTOP');
    const before = snapshot();

    const second = serve(join(dir, 'b.sock'));
    const code = await second.exit;
    expect(code).not.toBe(0);
    expect(second.output()).toContain(`gpushare: another gpushare daemon (pid ${first.child.pid}, listening on ${join(dir, 'a.sock')}, since `);
    expect(second.output()).toContain(`already uses the state directory ${stateDir}; stop it first, or start this one with another --state-dir [GS_ERR_CONFLICT]`);
    expect(existsSync(join(dir, 'b.sock'))).toBe(false);
    expect(snapshot()).toEqual(before);
    process.kill(firstPid, 'SIGCONT');

    first.child.kill('SIGKILL');
    await first.exit;
    const third = serve(join(dir, 'c.sock'));
    await answers(join(dir, 'c.sock'));
    third.child.kill('SIGTERM');
    expect(await third.exit).toBe(0);
  });
});
