import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tailOffset } from './log-tail.js';

const dir = mkdtempSync(join(tmpdir(), 'gpushare-tail-'));
const file = (name: string, text: string | Buffer): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const tail = async (text: string, lines: number): Promise<string> => text.slice(await tailOffset(file('t', text), lines));

describe('tailOffset (logs --tail)', () => {
  it.each([
    ['a\nb\nc\n', 2, 'b\nc\n'],
    ['a\nb\nc', 2, 'b\nc'],
    ['a\nb\nc\n', 1, 'c\n'],
    ['a\nb\nc\n', 3, 'a\nb\nc\n'],
    ['a\nb\nc\n', 10, 'a\nb\nc\n'],
    ['a\nb\nc\n', 0, ''],
    ['', 5, ''],
    ['\n\n\n', 2, '\n\n'],
    ['one line, no newline', 1, 'one line, no newline'],
  ])('%j, last %i lines: %j', async (text, lines, expected) => {
    expect(await tail(text, lines)).toBe(expected);
  });

  it('reads across chunks (a log of many 64 KiB chunks)', async () => {
    const lines = Array.from({ length: 50_000 }, (_, i) => `line ${i} ${'x'.repeat(i % 50)}`);
    const text = `${lines.join('\n')}\n`;
    const path = file('big', text);
    const offset = await tailOffset(path, 12_345);
    expect(text.slice(offset)).toBe(`${lines.slice(-12_345).join('\n')}\n`);
  });

  it('a file not there yet starts at 0', async () => {
    expect(await tailOffset(join(dir, 'absent'), 3)).toBe(0);
  });
});
