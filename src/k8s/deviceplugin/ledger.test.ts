import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readSlotFile } from '../cdi/slot-file.js';
import { Ledger, type LedgerEntry } from './ledger.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gs-ledger-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const entry = (n: number, extra: Partial<LedgerEntry> = {}): LedgerEntry => ({
  key: `u-${n}#0`, podUid: `u-${n}`, namespace: 'ml', pod: `p-${n}`, index: 0, container: 'main \u00e9"\\',
  gpus: [`GPU-${n}`], deviceIds: [`GPU-${n}::${n % 10}`], atMs: 1000 + n, annotated: false, ...extra,
});

/** The ledger's file as a reader sees it. */
const onDisk = (path: string): unknown => {
  const r = readSlotFile(path);
  if (r.kind !== 'slots') throw new Error(`no ledger: ${r.kind}`);
  return r.text;
};

describe('Ledger', () => {
  it('writes exactly the JSON of its entries in their order (kept texts joined), after adds, marks and removals', () => {
    const path = join(dir, 'ledger.json');
    const l = new Ledger(path);
    l.add([entry(1), entry(2)]);
    l.add([entry(3)]);
    l.markAnnotated([entry(2).key]);
    l.removePods(new Set(['u-1']));
    const want = { v: 1, entries: [{ ...entry(2), annotated: true }, entry(3)] };
    expect(onDisk(path)).toBe(JSON.stringify(want));
    expect(l.all()).toEqual(want.entries);
    l.close();
    const again = new Ledger(path);
    expect(again.all()).toEqual(want.entries);
    again.close();
  });

  it('keeps annotated marks in memory until the next write, and writes them at close', () => {
    const path = join(dir, 'ledger.json');
    const l = new Ledger(path);
    l.add([entry(1), entry(2)]);
    l.markAnnotated([entry(1).key]);
    expect(l.all()[0]?.annotated).toBe(true);
    expect(onDisk(path)).toBe(JSON.stringify({ v: 1, entries: [entry(1), entry(2)] })); // not written yet
    l.add([entry(3)]);
    expect(onDisk(path)).toBe(JSON.stringify({ v: 1, entries: [{ ...entry(1), annotated: true }, entry(2), entry(3)] }));
    l.markAnnotated([entry(2).key, 'no-such-key']);
    l.close();
    const reopened = new Ledger(path);
    expect(reopened.all().map((e) => e.annotated)).toEqual([true, true, false]);
    reopened.close();
  });

  it('records nothing of an add whose write fails, and keeps what it had', () => {
    const path = join(dir, 'ledger.json');
    const l = new Ledger(path);
    l.add([entry(1)]);
    rmSync(dir, { recursive: true, force: true }); // the directory gone: the file must be made again, and cannot be
    expect(() => l.add([entry(2)])).toThrow();
    expect(l.all()).toEqual([entry(1)]);
    expect(l.has(entry(2).key)).toBe(false);
    l.close();
  });
});
