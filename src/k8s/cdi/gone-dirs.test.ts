import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GoneDirs } from './gone-dirs.js';

let root: string;
const errors: string[] = [];
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'gs-gone-'));
  errors.length = 0;
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** A claim-like directory with a file in it. */
function made(name: string): string {
  const dir = join(root, 'claims', name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'region'), 'x'.repeat(4096));
  return dir;
}

describe('GoneDirs', () => {
  it('frees the name at once, removes the directory after the current turn, and says when nothing was there', async () => {
    const gone = new GoneDirs(join(root, 'gone'), (p, e) => errors.push(`${p}: ${e.message}`));
    gone.reset();
    const dir = made('uid-1');
    expect(gone.discard(dir)).toBe(true);
    expect(existsSync(dir)).toBe(false);
    expect(readdirSync(join(root, 'gone'))).toHaveLength(1); // not removed within the call
    mkdirSync(dir); // a claim prepared again gets a new directory of the same name
    expect(gone.discard(join(root, 'claims', 'never-made'))).toBe(false);
    await gone.settled();
    expect(readdirSync(join(root, 'gone'))).toEqual([]);
    expect(existsSync(dir)).toBe(true);
    expect(errors).toEqual([]);
  });

  it('removes everything discarded in a burst, one after another, and settles when idle', async () => {
    const gone = new GoneDirs(join(root, 'gone'), (p, e) => errors.push(`${p}: ${e.message}`));
    gone.reset();
    for (let i = 0; i < 20; i++) gone.discard(made(`uid-${i}`));
    gone.discard(made('uid-0')); // the same name again: a distinct trash name
    await gone.settled();
    expect(readdirSync(join(root, 'gone'))).toEqual([]);
    expect(readdirSync(join(root, 'claims'))).toEqual([]);
    await gone.settled();
    expect(errors).toEqual([]);
  });

  it('waits for a new quiet moment for what is discarded while a removal runs', async () => {
    const starts: (() => void)[] = [];
    const gone = new GoneDirs(join(root, 'gone'), (p, e) => errors.push(`${p}: ${e.message}`), (start) => starts.push(start));
    gone.reset();
    gone.discard(made('uid-1'));
    expect(starts).toHaveLength(1);
    starts.shift()!(); // the first quiet moment: uid-1's removal begins
    await new Promise((r) => setImmediate(r));
    gone.discard(made('uid-2')); // during that drain
    await new Promise((r) => setTimeout(r, 50));
    expect(readdirSync(join(root, 'gone'))).toHaveLength(1); // uid-2 waits: not removed in the busy moment
    expect(starts).toHaveLength(1);
    starts.shift()!();
    await gone.settled();
    expect(readdirSync(join(root, 'gone'))).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('empties what a killed agent left at reset, and makes the trash again if it was removed behind its back', async () => {
    mkdirSync(join(root, 'gone', 'uid-9.123.1'), { recursive: true });
    const gone = new GoneDirs(join(root, 'gone'), (p, e) => errors.push(`${p}: ${e.message}`));
    gone.reset();
    expect(readdirSync(join(root, 'gone'))).toEqual([]);
    const dir = made('uid-1');
    rmSync(join(root, 'gone'), { recursive: true });
    expect(gone.discard(dir)).toBe(true);
    expect(existsSync(dir)).toBe(false);
    await gone.settled();
    expect(readdirSync(join(root, 'gone'))).toEqual([]);
  });

  it('throws, moving nothing, where the rename fails for another reason', () => {
    writeFileSync(join(root, 'gone-file'), '');
    const blocked = new GoneDirs(join(root, 'gone-file'), () => undefined); // the trash is a file: ENOTDIR
    const dir = made('uid-1');
    expect(() => blocked.discard(dir)).toThrow(/ENOTDIR|not a directory/);
    expect(existsSync(dir)).toBe(true);
  });

  it('starts the removals only when its schedule says (the DRA plugin: a pause in the kubelet\'s calls)', async () => {
    let start: (() => void) | null = null;
    const gone = new GoneDirs(join(root, 'gone'), (p, e) => errors.push(`${p}: ${e.message}`), (s) => { start = s; });
    gone.reset();
    gone.discard(made('uid-1'));
    gone.discard(made('uid-2'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(readdirSync(join(root, 'gone'))).toHaveLength(2);
    expect(start).not.toBeNull();
    start!();
    await gone.settled();
    expect(readdirSync(join(root, 'gone'))).toEqual([]);
  });
});
