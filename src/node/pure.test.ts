/**
 * The daemon's deciding modules stay pure (DESIGN.md: pure core, thin shell): they import only
 * the pure layers and each other (types from anywhere), and read no clock and no randomness, so
 * the queue planner and admission are tested, and could run, without a daemon.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const PURE = ['planner.ts', 'residency.ts', 'reasons.ts', 'admission.ts', 'slices.ts', 'placement.ts', 'task.ts'];
const ALLOWED = [/^\.\.\/domain\//, /^\.\.\/scheduler\//, /^\.\.\/contract\//, ...PURE.map((f) => new RegExp(`^\\./${f.replace('.ts', '\\.js')}$`))];

describe('pure node modules', () => {
  it.each(PURE)('%s imports only pure modules (types excepted) and reads no clock or randomness', (file) => {
    const text = readFileSync(new URL(`./${file}`, import.meta.url), 'utf8');
    const values = [...text.matchAll(/^import (?!type )[^;]*? from '([^']+)';$/gm)].map((m) => m[1] ?? '');
    expect(values.filter((from) => !ALLOWED.some((a) => a.test(from)))).toEqual([]);
    expect(text).not.toMatch(/\bDate\.now\(|new Date\(|Math\.random\(|performance\.now\(|process\./);
  });
});
