import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { REGION_LAYOUT } from './layout.js';
import { regionTool } from './native.js';
import { decodeRegion, readRegion, type RegionSnapshot } from './reader.js';

const dir = mkdtempSync(join(tmpdir(), 'gpushare-region-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs region_fixture (two processes allocating), reads the region while both stay attached. */
async function withFixture(path: string): Promise<{ snapshot: RegionSnapshot; parent: number; child: number; bytes: Buffer }> {
  const proc = spawn(regionTool('region_fixture'), [path], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  try {
    const lines = createInterface({ input: proc.stdout });
    const first = await new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      proc.once('exit', (code) => reject(new Error(`region_fixture exited ${code} before it was ready`)));
    });
    const ready = JSON.parse(first) as { parent: number; child: number };
    const bytes = readFileSync(path);
    const snapshot = readRegion(path);
    return { snapshot, bytes, ...ready };
  } finally {
    proc.stdin.end('\n');
    expect(await exited).toBe(0);
  }
}

describe('region reader', () => {
  it('reads only a regular file, never follows a link nor waits on a FIFO, and never reads more than a region (the task owns its directory)', () => {
    const target = join(dir, 'secret');
    writeFileSync(target, 'x'.repeat(100));
    symlinkSync(target, join(dir, 'link'));
    expect(() => readRegion(join(dir, 'link'))).toThrow(/ELOOP/);
    const fifo = join(dir, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    expect(() => readRegion(fifo)).toThrow(/is not a regular file/);
    const big = join(dir, 'big');
    writeFileSync(big, '');
    truncateSync(big, 64 * 2 ** 30); // sparse: 64 GiB that must not be read
    expect(() => readRegion(big)).toThrow(/not a readable gpushare region/);
    expect(() => readRegion(join(dir, 'absent'))).toThrow(/no region file/);
  });

  it('reads exactly what two processes counted', async () => {
    const { snapshot, parent, child, bytes } = await withFixture(join(dir, 'fixture'));
    // readRegion reads the header and the slots below its high water mark only: the same answer.
    expect(snapshot).toEqual(decodeRegion(bytes));
    expect(snapshot.header).toMatchObject({ version: 1, creatorPid: parent, deviceCount: 2, limitedKinds: ['context', 'alloc', 'vmm', 'array', 'pool', 'graph'], slotsHwm: 2 });
    expect(snapshot.limits[0]).toEqual({ device: 0, memoryLimitBytes: 64 * 1024 * 1024, computeLimitPercent: 40, priority: 2 });
    expect(snapshot.limits[1]).toEqual({ device: 1, memoryLimitBytes: 1024 * 1024 * 1024, computeLimitPercent: null, priority: 0 });
    expect(snapshot.limits[2]).toEqual({ device: 2, memoryLimitBytes: null, computeLimitPercent: null, priority: 0 });
    expect(snapshot.slots.map((s) => [s.index, s.state, s.pid])).toEqual([[0, 'active', parent], [1, 'active', child]]);

    const [p, c] = snapshot.slots;
    expect(p!.startTime).toBeGreaterThan(0);
    expect(p!.attachedAtMs).toBeGreaterThan(Date.now() - 60_000);
    expect(p!.devices).toEqual([
      { device: 0, bytes: { context: 3000000, alloc: 1048576, vmm: 0, array: 0, pool: 0, host: 0, graph: 0 }, limitedBytes: 4048576, kernelsLaunched: 10, busyNs: 5000, throttleNs: 0, achievedShare: 0.5, targetShare: 0.25, priority: 'high', policy: 'hard' },
    ]);
    expect(p!.inFlight).toEqual([{ lane: 0, state: 'granted', device: 0, kind: 'alloc', bytes: 4096, ticket: expect.any(Number) as number }]);
    expect(c!.devices).toEqual([
      { device: 0, bytes: { context: 0, alloc: 65536, vmm: 0, array: 0, pool: 0, host: 0, graph: 0 }, limitedBytes: 65536, kernelsLaunched: 0, busyNs: 0, throttleNs: 0, achievedShare: 0, targetShare: 0, priority: 'low', policy: 'none' },
      { device: 1, bytes: { context: 0, alloc: 0, vmm: 2097152, array: 12345, pool: 777, host: 999999, graph: 0 }, limitedBytes: 2097152 + 12345 + 777, kernelsLaunched: 3, busyNs: 0, throttleNs: 42, achievedShare: 0, targetShare: 0, priority: 'low', policy: 'none' },
    ]);
    expect(c!.inFlight).toEqual([]);
    expect(p!.smPartitions).toEqual([]);
    expect(c!.smPartitions).toEqual([{ device: 1, sms: 64 }]);
  });

  it('shows no slots once the processes detached', async () => {
    const path = join(dir, 'detached');
    await withFixture(path);
    expect(readRegion(path).slots).toEqual([]);
  });

  describe('refuses what is not a region of this layout', () => {
    const good = (): Buffer => {
      const b = Buffer.alloc(REGION_LAYOUT.constants.fileSize);
      b.writeBigUInt64LE(BigInt(REGION_LAYOUT.constants.magic), 0);
      b.writeUInt32LE(1, 8);
      b.writeUInt32LE(4096, 12);
      b.writeUInt32LE(2560, 16);
      b.writeUInt32LE(1024, 20);
      b.writeUInt32LE(16, 24);
      b.writeUInt32LE(8, 28);
      b.writeBigUInt64LE(BigInt(REGION_LAYOUT.constants.fileSize), 32);
      b.writeUInt32LE(8, 44);
      return b;
    };
    it.each([
      ['a short file', () => Buffer.alloc(100), /shorter than the header/],
      ['a file nobody initialised', () => Buffer.alloc(REGION_LAYOUT.constants.fileSize), /magic 0/],
      ['a foreign magic', () => { const b = good(); b.write('HAMICORE', 0); return b; }, /magic 0x45524f43494d4148/],
      ['another layout version', () => { const b = good(); b.writeUInt32LE(2, 8); return b; }, /layout version 2/],
      ['another slot count', () => { const b = good(); b.writeUInt32LE(512, 20); return b; }, /foreign geometry/],
      ['a truncated file', () => good().subarray(0, 8192), /foreign geometry/],
    ])('%s', (_name, make, message) => {
      expect(() => decodeRegion(make())).toThrow(message);
      expect(() => decodeRegion(make())).toThrow(expect.objectContaining({ code: 'GS_ERR_INVALID_ARGUMENT' }) as Error);
    });

    it('an empty but valid region has no slots', () => {
      expect(decodeRegion(good()).slots).toEqual([]);
    });

    it('a missing file is GS_ERR_NOT_FOUND', () => {
      expect(() => readRegion(join(dir, 'nope'))).toThrow(expect.objectContaining({ code: 'GS_ERR_NOT_FOUND' }) as Error);
    });

    it('a file on disk is read the same as its bytes', () => {
      const path = join(dir, 'valid');
      writeFileSync(path, good());
      expect(readRegion(path)).toEqual(decodeRegion(good()));
    });
  });
});
