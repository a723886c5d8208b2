import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/cli.js';

describe('gpushare gpus --watch', () => {
  it('prints one JSON array per refresh and exits 0 on Ctrl-C', async () => {
    const child = spawn(process.execPath, [`${REPO_ROOT}bin/gpushare.js`, 'gpus', '--json', '--watch', '0.2', '--simulate', '2xT4'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (out.split('\n').filter(Boolean).length >= 3) {
          clearInterval(poll);
          resolve();
        }
      }, 50);
    });
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(0);
    const frames = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Array<{ model: string }>);
    expect(frames.length).toBeGreaterThanOrEqual(3);
    frames.forEach((f) => expect(f.map((g) => g.model)).toEqual(['T4-16GB', 'T4-16GB']));
  });
});
