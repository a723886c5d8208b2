import { describe, expect, it } from 'vitest';
import { policy } from '../policy.js';
import { parseSeeds, placementsCsv, PLACEMENTS_HEADER, reportHtml, summarize } from './output.js';
import { arrivals, replay } from './replay.js';
import { parseNodeList, parsePodList, TraceFormatError } from './trace.js';

const NODES = 'sn,cpu_milli,memory_mib,gpu,model\nn0,32000,131072,2,T4\nn1,16000,65536,1,V100M16\n';
const PODS = [
  'name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time',
  'p0,4000,8192,1,500,,LS,Running,0,1,0',
  'p1,4000,8192,1,1000,V100M16,LS,Running,0,1,0',
  'p2,2000,1024,0,0,,LS,Running,0,1,0',
  'p3,8000,8192,2,1000,,LS,Running,0,1,0',
].join('\n');

describe('trace decoding', () => {
  it('reads nodes and pods, and maps milli to shares', () => {
    const nodes = parseNodeList(NODES);
    expect(nodes.map((n) => [n.name, n.gpus.length, n.gpus[0]?.model])).toEqual([['n0', 2, 'T4'], ['n1', 1, 'V100M16']]);
    const pods = parsePodList(PODS);
    expect(pods[1]).toMatchObject({ numGpu: 1, gpuMilli: 1000, gpuSpec: 'V100M16' });
    expect(() => parsePodList('name,cpu_milli\nx,1')).toThrow(TraceFormatError);
    expect(() => parsePodList('name,cpu_milli,memory_mib,num_gpu,gpu_milli\nx,1,1,2,500')).toThrow(/fractional/);
  });
});

describe('replay', () => {
  const nodes = parseNodeList(NODES);
  const pods = parsePodList(PODS);
  it('inflates arrivals to the ratio asked, reproducibly', () => {
    const a = arrivals(pods, 3000, 1.3, 1);
    expect(a.reduce((s, p) => s + p.numGpu * p.gpuMilli, 0)).toBeGreaterThanOrEqual(3900);
    expect(arrivals(pods, 3000, 1.3, 1)).toEqual(a);
  });
  it('records every pod, honours gpu_spec, and allocation never exceeds arrivals', () => {
    const r = replay(nodes, pods, { policy: policy('bestfit'), seed: 7, inflate: 1.3, keepRecords: true });
    expect(r.records?.length).toBe(r.pods);
    for (const rec of r.records ?? []) if (rec.pod.gpuSpec === 'V100M16' && rec.node) expect(rec.node).toBe('n1');
    for (const p of r.curve) expect(p.allocated).toBeLessThanOrEqual(p.arrived + 1e-9);
    expect(r.allocatedAt100).not.toBeNull();
    const csv = placementsCsv(r).split('\n');
    expect(csv[0]).toBe(PLACEMENTS_HEADER);
    expect(csv.length - 2).toBe(r.pods);
    expect(reportHtml('t', [r], 1.3)).toContain('<svg');
    expect(summarize([r])[0]?.policy).toBe('bestfit');
  });
  it('reads the 130% point where arrivals cross 130%, not at the end, when the list alone asks for more', () => {
    // 3 GPUs; the list asks for 4.8: no copies are appended and the run goes on to 160%. The
    // pods that never fit (too much CPU) make arrivals run ahead of allocation, so small pods
    // after the crossing still add to it.
    const rows = ['name,cpu_milli,memory_mib,num_gpu,gpu_milli'];
    for (let i = 0; i < 4; i++) rows.push(`huge${i},999000,128,1,1000`);
    for (let i = 0; i < 8; i++) rows.push(`small${i},100,128,1,100`);
    const r = replay(nodes, parsePodList(rows.join('\n')), { policy: policy('bestfit'), seed: 3, inflate: 1.3 });
    expect(r.pods).toBe(12);
    expect(r.arrivedAtEnd).toBeCloseTo(160);
    const crossing = r.curve.findIndex((p) => p.arrived >= 130 - 1e-9);
    expect(crossing).toBeLessThan(r.curve.length - 1);
    expect(r.allocatedAtInflate).toBe(r.curve[crossing]?.allocated);
    expect(r.allocatedAtInflate).toBeLessThan(r.allocatedAtEnd);
    expect(r.allocatedAtEnd).toBeCloseTo((100 * 800) / 3000);
    expect(summarize([r])[0]?.meanAtInflate).toBe(r.allocatedAtInflate);
    // A list that needs copies to get there ends at the crossing.
    const inflated = replay(nodes, pods, { policy: policy('bestfit'), seed: 7, inflate: 1.3 });
    expect(inflated.allocatedAtInflate).toBe(inflated.allocatedAtEnd);
  });
  it('replays an arrival order given as is: no shuffle, no copies', () => {
    const order = [pods[3], pods[0], pods[0], pods[2]].map((p) => p as (typeof pods)[number]);
    const r = replay(nodes, pods, { policy: policy('bestfit'), seed: 7, inflate: 1.3, keepRecords: true, order });
    expect(r.pods).toBe(4);
    expect(r.records?.map((rec) => rec.pod.name)).toEqual(['p3', 'p0', 'p0', 'p2']);
    expect(r.arrivedAtEnd).toBeCloseTo((100 * 3000) / 3000);
  });
  it('keeps the workload estimate to the prior when learning is off (the artifact\'s typical pods)', () => {
    // 3 GPUs; the prior is one whole-GPU pod, the arrivals three half-GPU pods. Under the prior
    // alone a GPU with half left is a fragment: fgd pairs two halves on one GPU and the third
    // strands 500 of the 1,500 idle (33.3%). Learning from the arrivals weighs the whole-GPU
    // shape 1/4, and the same 500 count a quarter (8.3%).
    const half = parsePodList('name,cpu_milli,memory_mib,num_gpu,gpu_milli\nh,1000,1024,1,500\n')[0] as (typeof pods)[number];
    const prior = [pods[1] as (typeof pods)[number]];
    const order = [half, half, half];
    const fixed = replay(nodes, pods, { policy: policy('fgd'), seed: 1, inflate: 1.3, order, prior, learn: false });
    expect(fixed.allocatedAtEnd).toBeCloseTo(50);
    expect(fixed.fragmentationAtEnd).toBeCloseTo(100 / 3);
    const learned = replay(nodes, pods, { policy: policy('fgd'), seed: 1, inflate: 1.3, order, prior });
    expect(learned.fragmentationAtEnd).toBeCloseTo(100 / 12);
  });
  it('parses seed lists', () => {
    expect(parseSeeds('42-44,50')).toEqual({ ok: true, value: [42, 43, 44, 50] });
    expect(parseSeeds('5-1').ok).toBe(false);
  });
});

describe('replay with SM partitions', () => {
  const HOPPER_NODES = 'sn,cpu_milli,memory_mib,gpu,model\nh0,64000,262144,2,H100\nt0,64000,262144,2,T4\n';
  const SHARING = ['name,cpu_milli,memory_mib,num_gpu,gpu_milli,isolation', 'a,1000,1024,1,250,', 'b,1000,1024,1,500,', 'c,1000,1024,1,1000,', 'd,1000,1024,1,300,time-slice'].join('\n');

  it('reads the optional isolation column, and refuses a mode it does not know', () => {
    expect(parsePodList(SHARING).map((p) => p.isolation)).toEqual([null, null, null, 'time-slice']);
    expect(parsePodList(PODS)[0]?.isolation).toBeNull();
    expect(() => parsePodList('name,cpu_milli,memory_mib,num_gpu,gpu_milli,isolation\nx,1,1,1,500,mig')).toThrow(/isolation "mig" is not one of time-slice, sm-partition/);
  });

  it('gives GPU-sharing pods SM partitions on Hopper GPUs only, never beside time-sliced work', () => {
    const hopper = parseNodeList(HOPPER_NODES);
    expect(hopper[0]?.gpus[0]?.sm).toEqual({ ok: true, layout: { total: 132, min: 8, step: 8, groupable: 132 - (132 % 8) } });
    expect(hopper[1]?.gpus[0]?.sm).toEqual({ ok: false, cause: 'computeCapability', computeCapability: '7.5' });
    const pods = parsePodList(SHARING);
    const r = replay(hopper, pods, { policy: policy('bestfit'), seed: 3, inflate: 2, keepRecords: true, isolation: 'sm-partition' });
    const byGpu = new Map<string, Set<string>>();
    for (const rec of r.records ?? []) {
      if (rec.node === null) continue;
      const partition = rec.pod.gpuMilli < 1000 && rec.pod.isolation === null;
      // Partitions only on the H100 node; what shares a GPU is of one kind.
      if (partition) expect(rec.node).toBe('h0');
      for (const g of rec.gpus) {
        const kinds = byGpu.get(`${rec.node}/${g}`) ?? new Set<string>();
        kinds.add(partition ? 'partition' : 'other');
        byGpu.set(`${rec.node}/${g}`, kinds);
      }
    }
    for (const kinds of byGpu.values()) expect(kinds.size).toBe(1);
    expect([...byGpu.keys()].some((k) => k.startsWith('h0') && byGpu.get(k)?.has('partition'))).toBe(true);
  });

  it('says why partitions fail: GPUs that cannot be partitioned', () => {
    const t4s = parseNodeList('sn,cpu_milli,memory_mib,gpu,model\nt0,64000,262144,2,T4\n');
    const pods = parsePodList('name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,1000,1024,1,250\n');
    const r = replay(t4s, pods, { policy: policy('bestfit'), seed: 1, inflate: 1, isolation: 'sm-partition' });
    expect(r.failures).toEqual({ notPartitionable: r.pods });
    // The same trace time-sliced places every pod.
    expect(replay(t4s, pods, { policy: policy('bestfit'), seed: 1, inflate: 1 }).failures).toEqual({});
  });
});

