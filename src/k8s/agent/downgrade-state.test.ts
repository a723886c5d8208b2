import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SlotFile } from '../cdi/slot-file.js';
import { DEFAULT_STATE_FILES, downgradeState } from './downgrade-state.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gs-downgrade-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('downgradeState', () => {
  it('rewrites each slotted file in the plain layout, leaves plain ones, and stops at one it cannot', () => {
    const slotted = join(dir, 'checkpoint.json');
    const f = new SlotFile(slotted);
    f.read();
    f.write('{"version":2,"bootId":"b","claims":[]}\n');
    f.close();
    const plain = join(dir, 'ledger.json');
    writeFileSync(plain, '{"v":1,"entries":[]}');
    expect(downgradeState([slotted, plain])).toEqual([`${slotted}: rewritten in the plain layout`, `${plain}: in the plain layout already, left as it is`]);
    expect(readFileSync(slotted, 'utf8')).toBe('{"version":2,"bootId":"b","claims":[]}\n');
    expect(() => downgradeState([join(dir, 'none.json'), plain])).toThrow(/none\.json: no such file/);
  });

  it('with no file named, takes the default places that exist, and says so when none does', () => {
    expect(DEFAULT_STATE_FILES).toEqual(['/var/lib/kubelet/plugins/gpu.gpushare.io/checkpoint.json', '/var/lib/gpushare/device-plugin/ledger.json']);
    const present = join(dir, 'checkpoint.json');
    const absent = join(dir, 'ledger.json');
    const f = new SlotFile(present);
    f.read();
    f.write('{"version":2,"bootId":"b","claims":[]}\n');
    f.close();
    expect(downgradeState([], [present, absent])).toEqual([`${present}: rewritten in the plain layout`]);
    expect(existsSync(absent)).toBe(false);
    rmSync(present);
    expect(downgradeState([], [present, absent])).toEqual([`no state file at ${present} or ${absent}: nothing to do`]);
  });
});
