import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { PreparedClaim } from '../dra/prepare.js';
import { combinedLocator, draRegionLocator, hostProcessOf, podProcessGroups } from './pod-processes.js';

const proc = mkdtempSync(join(tmpdir(), 'gs-proc-'));
afterAll(() => rmSync(proc, { recursive: true, force: true }));

/** A /proc entry: stat with the state, pgrp (field 5) and start time (field 22); status with NSpid. */
function fakeProcess(pid: number, { pgid, start, nspid, state = 'S' }: { pgid: number; start: number; nspid: number[]; state?: string }): void {
  mkdirSync(join(proc, String(pid)), { recursive: true });
  const fields = [state, '1', String(pgid), ...Array.from({ length: 16 }, () => '0'), String(start), '0'];
  writeFileSync(join(proc, String(pid), 'stat'), `${pid} (python3 (train)) ${fields.join(' ')}\n`);
  writeFileSync(join(proc, String(pid), 'status'), `Name:\tpython3\nNSpid:\t${nspid.join('\t')}\n`);
}

describe('a region slot\'s process on the host', () => {
  fakeProcess(7, { pgid: 7, start: 111, nspid: [7] }); // a host process that happens to have the container's pid
  fakeProcess(4242, { pgid: 4240, start: 5000, nspid: [4242, 7] }); // the container's pid 7
  fakeProcess(4243, { pgid: 4240, start: 6000, nspid: [4243, 7] }); // pid 7 of another container, started later
  fakeProcess(4300, { pgid: 4300, start: 7000, nspid: [4300, 12], state: 'Z' });

  it('is matched by its pid inside its namespace and its start time, never by the number alone', () => {
    expect(hostProcessOf(7, 5000, proc)).toEqual({ pid: 4242, pgid: 4240, startTime: 5000, innerPid: 7 });
    expect(hostProcessOf(7, 6000, proc)?.pid).toBe(4243);
    expect(hostProcessOf(7, 111, proc)?.pid).toBe(7);
    expect(hostProcessOf(7, 999, proc)).toBeNull(); // a reused pid: the process that attached is gone
    expect(hostProcessOf(12, 7000, proc)).toBeNull(); // ended (a zombie)
  });

  it('a region that cannot be read is reported, not fatal', () => {
    expect(podProcessGroups([join(proc, 'no-region')], proc)).toEqual({ pgids: [], unreadable: [{ path: join(proc, 'no-region'), error: expect.stringMatching(/no region file/) }] });
  });
});

describe('where a pod\'s regions are', () => {
  const claim = (namespace: string, name: string, uid: string) => ({ namespace, name, uid, devices: [], smRanges: [], config: {} }) as unknown as PreparedClaim;
  const prepared = [claim('ml', 'train-gpu', 'c-1'), claim('ml', 'other', 'c-2'), claim('web', 'train-gpu', 'c-3')];

  it('DRA: the claims the pod holds (by the names its status gives them) that this node prepared', () => {
    const locator = draRegionLocator(() => prepared, '/var/lib/kubelet/plugins/gpu.gpushare.io');
    const pod = { metadata: { namespace: 'ml', name: 'train-0' }, status: { resourceClaimStatuses: [{ name: 'gpu', resourceClaimName: 'train-gpu' }, { name: 'skipped' }] } };
    expect(locator.regionsOf(pod)).toEqual(['/var/lib/kubelet/plugins/gpu.gpushare.io/claims/c-1/region']);
    expect(locator.regionsOf({ metadata: { namespace: 'ml', name: 'cpu-only' } })).toEqual([]);
    const both = combinedLocator([locator, { regionsOf: () => ['/run/classic/region', '/var/lib/kubelet/plugins/gpu.gpushare.io/claims/c-1/region'] }]);
    expect(both.regionsOf(pod)).toEqual(['/var/lib/kubelet/plugins/gpu.gpushare.io/claims/c-1/region', '/run/classic/region']);
  });
});
