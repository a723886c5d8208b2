// The node plugins' small state files written on their hot path (the device plugin's ledger on
// every Allocate, the DRA plugin's checkpoint on every prepare and unprepare): a temporary file
// renamed over the old one (cdi/write.ts's writeFileAtomic, not fsynced: the layout before
// session 23) against a write in place into one of two slots (cdi/slot-file.ts). On ext4 with
// auto_da_alloc (the default) a rename over an existing file starts the writeback of the new
// file's blocks inside the rename; a write into a file's existing pages does not. Session 24
// adds a third way: in place with fdatasync after each write (SlotFile's `sync`), the price of
// surviving a power loss; the file's writer lock is taken once, at the start, outside the timing.
// Per round, each way writes the same text `WRITES` times into its own file of a temporary
// directory, the two interleaved write by write; per round p50 and p99 of each, then the
// median of the rounds (and their range). Usage:
//   node --import tsx bench/state-write.bench.ts [--rounds 5] [--writes 500] [--bytes 16000] [--dir /tmp]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SlotFile } from '../src/k8s/cdi/slot-file.js';
import { writeFileAtomic } from '../src/k8s/cdi/write.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
};
const ROUNDS = Number(opt('--rounds', '5'));
const WRITES = Number(opt('--writes', '500'));
const BYTES = Number(opt('--bytes', '16000'));
const dir = mkdtempSync(join(opt('--dir', tmpdir()), 'gs-state-write-'));

/** A ledger-like JSON text of about BYTES bytes, different each write (a counter in it). */
const text = (i: number): string => JSON.stringify({ v: 1, i, entries: 'x'.repeat(Math.max(0, BYTES - 40)) });
const q = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
};
const ways = ['rename over the file', 'in place, two slots', 'in place + fdatasync'] as const;
const perRound = Object.fromEntries(ways.map((w) => [w, { p50: [] as number[], p99: [] as number[] }])) as Record<(typeof ways)[number], { p50: number[]; p99: number[] }>;
const slots = new SlotFile(join(dir, 'slots.json'));
slots.read();
const synced = new SlotFile(join(dir, 'synced.json'), { sync: true });
synced.read();
const renamed = join(dir, 'renamed.json');
try {
  for (let r = -1; r < ROUNDS; r++) { // round -1 warms up
    const t = { rename: [] as number[], slots: [] as number[], synced: [] as number[] };
    for (let i = 0; i < WRITES; i++) {
      const body = text(i);
      const orders = [['rename', 'slots', 'synced'], ['slots', 'synced', 'rename'], ['synced', 'rename', 'slots']] as const;
      for (const way of orders[i % 3] ?? orders[0]) {
        const t0 = performance.now();
        if (way === 'rename') writeFileAtomic(renamed, body, 0o600, false);
        else if (way === 'slots') slots.write(body);
        else synced.write(body);
        t[way].push(performance.now() - t0);
      }
    }
    if (r < 0) continue;
    perRound['rename over the file'].p50.push(q(t.rename, 0.5));
    perRound['rename over the file'].p99.push(q(t.rename, 0.99));
    perRound['in place, two slots'].p50.push(q(t.slots, 0.5));
    perRound['in place, two slots'].p99.push(q(t.slots, 0.99));
    perRound['in place + fdatasync'].p50.push(q(t.synced, 0.5));
    perRound['in place + fdatasync'].p99.push(q(t.synced, 0.99));
  }
} finally {
  slots.close();
  synced.close();
  rmSync(dir, { recursive: true, force: true });
}
const f = (xs: number[]): string => `${q(xs, 0.5).toFixed(3)} (${Math.min(...xs).toFixed(3)}-${Math.max(...xs).toFixed(3)})`;
console.log(`state file writes of ${BYTES} bytes, ${ROUNDS} rounds x ${WRITES} writes each way, interleaved; ms, median of the rounds (range)`);
console.log('| way | p50 | p99 |');
console.log('| --- | --- | --- |');
for (const w of ways) console.log(`| ${w} | ${f(perRound[w].p50)} | ${f(perRound[w].p99)} |`);
