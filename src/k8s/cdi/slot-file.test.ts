import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readSlotFile, SlotFile, writePlainLayout } from './slot-file.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gs-slots-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Overwrites `bytes.length` bytes at `at`, as a writer killed in the middle of its pwrite leaves them. */
function scribble(path: string, at: number, bytes: Buffer): void {
  const b = readFileSync(path);
  bytes.copy(b, at);
  writeFileSync(path, b);
}

describe('SlotFile', () => {
  it('reads absent, then each write, in place after the first (same inode, same size)', () => {
    const path = join(dir, 'state');
    const f = new SlotFile(path);
    expect(f.read()).toEqual({ kind: 'absent' });
    f.write('{"a":1}');
    const first = statSync(path);
    expect(first.size).toBe(8192);
    expect(readSlotFile(path)).toEqual({ kind: 'slots', text: '{"a":1}', seq: 1 });
    for (let i = 2; i < 6; i++) {
      f.write(`{"a":${i}}`);
      expect(readSlotFile(path)).toEqual({ kind: 'slots', text: `{"a":${i}}`, seq: i });
      expect(statSync(path)).toMatchObject({ ino: first.ino, size: first.size });
    }
    f.close();
  });

  it('a torn newest slot leaves the previous record; a torn older slot does not matter', () => {
    const path = join(dir, 'state');
    const f = new SlotFile(path);
    f.read();
    f.write('one'); // both slots (the file made), newest slot 1
    f.write('two'); // slot 0
    f.write('three'); // slot 1
    f.close();
    expect(readSlotFile(path)).toMatchObject({ text: 'three' });
    scribble(path, 4096 + 80, Buffer.from('XX')); // inside slot 1's header hash or payload
    expect(readSlotFile(path)).toMatchObject({ kind: 'slots', text: 'two' });
    scribble(path, 0, Buffer.from('gpushare-slots 1 2 3 0000')); // slot 0's hash torn too
    expect(readSlotFile(path)).toMatchObject({ kind: 'torn' });
  });

  it('a writer starting on a file with a torn slot writes the torn one, and keeps the good one', () => {
    const path = join(dir, 'state');
    const a = new SlotFile(path);
    a.read();
    a.write('one');
    a.write('two'); // slot 0, seq 2
    a.close();
    scribble(path, 30, Buffer.from('zzzz')); // slot 0 torn: slot 1 ('one', seq 1) is the newest valid
    const b = new SlotFile(path);
    expect(b.read()).toMatchObject({ kind: 'slots', text: 'one', seq: 1 });
    b.write('three');
    expect(readSlotFile(path)).toMatchObject({ text: 'three', seq: 2 });
    scribble(path, 4096 + 30, Buffer.from('zzzz')); // slot 1 (seq 1) torn now: 'three' went to slot 0
    expect(readSlotFile(path)).toMatchObject({ text: 'three' });
    b.close();
  });

  it('grows the file when a record does not fit a slot, and shrinks records in place', () => {
    const path = join(dir, 'state');
    const f = new SlotFile(path);
    f.read();
    f.write('x');
    const big = 'y'.repeat(10_000);
    f.write(big);
    expect(statSync(path).size).toBe(65536);
    expect(readSlotFile(path)).toMatchObject({ text: big });
    f.write('small');
    expect(readSlotFile(path)).toMatchObject({ text: 'small' });
    expect(statSync(path).size).toBe(65536);
    f.close();
  });

  it('reads a plain file as it is and replaces it with slots at the first write', () => {
    const path = join(dir, 'state');
    writeFileSync(path, '{"v":1,"entries":[]}');
    const f = new SlotFile(path);
    expect(f.read()).toEqual({ kind: 'plain', text: '{"v":1,"entries":[]}' });
    f.write('{"v":1,"entries":[1]}');
    expect(readSlotFile(path)).toMatchObject({ kind: 'slots', text: '{"v":1,"entries":[1]}' });
    f.close();
    writeFileSync(path, '');
    expect(readSlotFile(path)).toEqual({ kind: 'plain', text: '' });
  });

  it('makes the file again when it was replaced or removed behind the writer', () => {
    const path = join(dir, 'state');
    const f = new SlotFile(path);
    f.read();
    f.write('one');
    rmSync(path);
    f.write('two');
    expect(readSlotFile(path)).toMatchObject({ text: 'two' });
    writeFileSync(path, 'by hand');
    f.write('three');
    expect(readSlotFile(path)).toMatchObject({ text: 'three' });
    f.close();
  });

  it('one writer per file: a second is refused naming the first, until the first closes', () => {
    const path = join(dir, 'state');
    const a = new SlotFile(path);
    a.read();
    a.write('a1');
    const b = new SlotFile(path);
    expect(() => b.read()).toThrow(expect.objectContaining({ code: 'GS_ERR_CONFLICT', message: expect.stringMatching(new RegExp(`being written by process ${process.pid} \\(this one`)) }));
    expect(() => b.write('b1')).toThrow(/one writer per file/);
    expect(readSlotFile(path)).toMatchObject({ text: 'a1' }); // nothing changed
    a.close();
    expect(b.read()).toMatchObject({ kind: 'slots', text: 'a1' });
    b.write('b1');
    expect(() => a.write('a2')).toThrow(/one writer per file/);
    b.close();
    expect(readSlotFile(path)).toMatchObject({ text: 'b1' });
    expect(readFileSync(`${path}.lock`, 'utf8')).toBe(`pid ${process.pid}\n`);
  });

  it('a writer in another process is refused while it lives, and its death frees the file (flock: no stale lock)', async () => {
    const path = join(dir, 'state');
    // flock(1) holds the lock in a process group of its own (its shell inherits the descriptor).
    const holder = spawn('flock', ['-x', `${path}.lock`, '-c', 'echo locked; exec sleep 30'], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
    const f = new SlotFile(path);
    expect(() => f.read()).toThrow(/being written by another process/);
    process.kill(-(holder.pid ?? 0), 'SIGKILL');
    // Free once the group's last process (the shell's `sleep`, which inherited the descriptor) is torn down.
    let read: ReturnType<SlotFile['read']> | null = null;
    for (let i = 0; i < 200 && read === null; i++) {
      try {
        read = f.read();
      } catch {
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    expect(read).toEqual({ kind: 'absent' });
    f.write('mine');
    f.close();
  });

  it('with sync, writes in place and remakes the same way (fdatasync after each)', () => {
    const path = join(dir, 'state');
    const f = new SlotFile(path, { sync: true });
    f.read();
    f.write('one');
    f.write('x'.repeat(10_000)); // remade larger
    f.write('three');
    expect(readSlotFile(path)).toMatchObject({ kind: 'slots', text: 'three', seq: 3 });
    expect(statSync(path).size).toBe(65536);
    f.close();
  });

  it('downgrade: writePlainLayout leaves the newest record alone in the file, which the reader before the slots (JSON.parse of the file) reads', () => {
    const path = join(dir, 'checkpoint.json');
    const doc = `${JSON.stringify({ version: 2, bootId: 'b', claims: [{ uid: 'u1' }] })}\n`;
    const f = new SlotFile(path);
    f.read();
    f.write('{"version":2,"bootId":"b","claims":[]}\n');
    f.write(doc);
    // What base/session23's readers do with the slotted file: refuse it as not JSON.
    expect(() => JSON.parse(readFileSync(path, 'utf8'))).toThrow(SyntaxError);
    // Refused while a writer (a running agent) holds it, changing nothing.
    expect(() => writePlainLayout(path)).toThrow(expect.objectContaining({ code: 'GS_ERR_CONFLICT' }));
    expect(readSlotFile(path)).toMatchObject({ kind: 'slots', text: doc });
    f.close();
    expect(writePlainLayout(path)).toBe('written');
    expect(readFileSync(path, 'utf8')).toBe(doc);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ claims: [{ uid: 'u1' }] });
    expect(writePlainLayout(path)).toBe('plain');
    // And this version reads it back (an upgrade again), slotted at its first write.
    const g = new SlotFile(path);
    expect(g.read()).toEqual({ kind: 'plain', text: doc });
    g.close();
    expect(() => writePlainLayout(join(dir, 'absent.json'))).toThrow(expect.objectContaining({ code: 'GS_ERR_NOT_FOUND' }));
    // The slotted layout with neither slot whole.
    writeFileSync(path, Buffer.concat([Buffer.from('gpushare-slots 1 x'), Buffer.alloc(8192 - 18)]));
    expect(() => writePlainLayout(path)).toThrow(/no whole record.*nothing changed/);
  });

  it('an in-place write puts exactly the record in the slot (header, then the utf-8 payload), up to a record that fills the slot; one byte more remakes the file', () => {
    const path = join(dir, 'state');
    const f = new SlotFile(path);
    f.read();
    f.write('first'); // made: 2 x 4096, newest slot 1
    const expected = (seq: number, text: string): Buffer => {
      const payload = Buffer.from(text, 'utf8');
      return Buffer.concat([Buffer.from(`gpushare-slots 1 ${seq} ${payload.length} ${createHash('sha256').update(payload).digest('hex')}\n`, 'latin1'), payload]);
    };
    const texts = ['{"n":"é✓ \u0000"}', 'é'.repeat(700), 'z'.repeat(3000), 'short'];
    texts.forEach((text, i) => {
      f.write(text);
      const slot = i % 2 === 0 ? 0 : 1;
      const want = expected(i + 2, text);
      expect(readFileSync(path).subarray(slot * 4096, slot * 4096 + want.length)).toEqual(want);
    });
    // A record of exactly 4096 bytes fills slot 0 in place; one byte more does not fit.
    const header = expected(6, '').length; // with a one-digit length
    const fill = 'a'.repeat(4096 - header - String(4096 - header).length + 1);
    expect(expected(6, fill).length).toBe(4096);
    f.write(fill);
    expect(statSync(path).size).toBe(8192);
    expect(readFileSync(path).subarray(0, 4096)).toEqual(expected(6, fill));
    f.write(`${fill}b`);
    expect(statSync(path).size).toBe(32768); // slots of 16 KiB: at least twice the record
    expect(readSlotFile(path)).toEqual({ kind: 'slots', text: `${fill}b`, seq: 7 });
    f.close();
  });

  it('a text given as its UTF-8 bytes in pieces writes the same record as the string, in place and when the file is remade', () => {
    const asString = join(dir, 'string');
    const asParts = join(dir, 'parts');
    const a = new SlotFile(asString);
    const b = new SlotFile(asParts);
    a.read();
    b.read();
    const texts = ['{"v":1,"entries":[]}', '{"n":"é✓"}', 'q'.repeat(9000), '', 'é'.repeat(3000)];
    for (const text of texts) {
      a.write(text);
      const bytes = Buffer.from(text, 'utf8');
      // Cut anywhere, a multi-byte character included: the pieces are bytes, not characters.
      b.write([bytes.subarray(0, 3), Buffer.alloc(0), bytes.subarray(3, 7), bytes.subarray(7)]);
      expect(readFileSync(asParts)).toEqual(readFileSync(asString));
      expect(readSlotFile(asParts)).toMatchObject({ kind: 'slots', text });
    }
    a.close();
    b.close();
  });

  it('keeps utf-8 text exactly', () => {
    const path = join(dir, 'state');
    const f = new SlotFile(path);
    f.read();
    f.write('{"n":"é✓ \\u0000"}');
    expect(readSlotFile(path)).toMatchObject({ text: '{"n":"é✓ \\u0000"}' });
    f.close();
  });

  it('property: after any writes, a tear of any bytes of the slot last written reads the last or the one before', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 3000 }), { minLength: 2, maxLength: 8 }), fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 64 }), (texts, where, junk) => {
        const path = join(dir, `p-${Math.random()}`);
        const f = new SlotFile(path);
        f.read();
        for (const t of texts) f.write(t);
        f.close();
        const last = texts[texts.length - 1] as string;
        const before = texts[texts.length - 2] as string;
        const read = readSlotFile(path);
        expect(read).toMatchObject({ kind: 'slots', text: last });
        // Tear the slot holding the last record somewhere in its first 4 KiB (header or payload).
        const size = statSync(path).size;
        const cap = size / 2;
        const bytes = readFileSync(path);
        const slot = bytes.toString('latin1', 0, 40).includes(` ${(read as { seq: number }).seq} `) && bytes.toString('latin1', 0, 17) === 'gpushare-slots 1 ' ? 0 : 1;
        const lastLen = Buffer.byteLength(last) + 100;
        const at = slot * cap + (where % Math.min(cap - junk.length, lastLen));
        const old = bytes.subarray(at, at + junk.length);
        scribble(path, at, Buffer.from(junk));
        const torn = readSlotFile(path);
        if (Buffer.compare(old, Buffer.from(junk)) === 0) expect(torn).toMatchObject({ text: last });
        else expect([last, before]).toContain((torn as { text: string }).text);
        rmSync(path);
      }),
      { numRuns: 60 },
    );
  });
});
