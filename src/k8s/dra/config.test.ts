import { describe, expect, it } from 'vitest';
import { describeIssues } from '../../domain/result.js';
import { DEFAULT_GPU_CONFIG, libraryPriorityBand, mergeGpuConfigs, parseGpuConfig } from './config.js';
import { CONFIG_API_VERSION, CONFIG_KIND } from './names.js';

const base = { apiVersion: CONFIG_API_VERSION, kind: CONFIG_KIND };

describe('parseGpuConfig', () => {
  it.each([
    ['defaults', {}, DEFAULT_GPU_CONFIG],
    ['every field', { isolation: 'sm-partition', priority: 'high', computePolicy: 'share' }, { isolation: 'sm-partition', priority: 900, computePolicy: 'share' }],
    ['a numeric priority', { priority: 250 }, { ...DEFAULT_GPU_CONFIG, priority: 250 }],
    ['low', { priority: 'low' }, { ...DEFAULT_GPU_CONFIG, priority: 100 }],
  ])('accepts %s', (_name, fields, expected) => {
    expect(parseGpuConfig({ ...base, ...fields })).toEqual({ ok: true, value: expected });
  });

  it.each([
    ['an unknown isolation mode', { isolation: 'mps' }, /config\.isolation: isolation must be one of time-slice, sm-partition \(got "mps"\)/],
    ['an unknown field', { isolaton: 'time-slice' }, /unknown field "isolaton"; a GpuConfig accepts apiVersion, kind, isolation, priority, computePolicy/],
    ['another apiVersion', { apiVersion: 'gpu.nvidia.com/v1beta1' }, /apiVersion must be gpu\.gpushare\.io\/v1alpha1 \(got "gpu\.nvidia\.com\/v1beta1"\)/],
    ['another kind', { kind: 'GpuSharingConfig' }, /kind must be GpuConfig/],
    ['a priority out of range', { priority: 1001 }, /priority must be low, normal, high or a whole number from 0 to 1000 \(got 1001\)/],
    ['a fractional priority', { priority: 1.5 }, /priority must be/],
    ['an unknown compute policy', { computePolicy: 'soft' }, /computePolicy must be one of hard, share/],
  ])('refuses %s, saying what is accepted', (_name, fields, message) => {
    const r = parseGpuConfig({ ...base, ...fields });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(describeIssues(r.issues)).toMatch(message);
  });

  it('refuses something that is not an object', () => {
    const r = parseGpuConfig('isolation=time-slice');
    expect(r.ok || describeIssues(r.issues)).toMatch(/must be a GpuConfig object/);
  });
});

describe('mergeGpuConfigs', () => {
  it('lets a later config (the claim\'s) override an earlier one (the class\'s), field by field', () => {
    const r = mergeGpuConfigs([{ ...base, isolation: 'sm-partition', priority: 'low' }, { ...base, priority: 'high' }]);
    expect(r).toEqual({ ok: true, value: { isolation: 'sm-partition', priority: 900, computePolicy: 'hard' } });
  });
  it('refuses when any config is bad, even one a later config would override', () => {
    expect(mergeGpuConfigs([{ ...base, isolation: 'bogus' }, { ...base, isolation: 'time-slice' }]).ok).toBe(false);
  });
  it('is the defaults with no config', () => {
    expect(mergeGpuConfigs([])).toEqual({ ok: true, value: DEFAULT_GPU_CONFIG });
  });
});

describe('libraryPriorityBand', () => {
  it.each([[0, 'low'], [300, 'low'], [301, 'normal'], [500, 'normal'], [699, 'normal'], [700, 'high'], [1000, 'high']] as const)('%i is %s', (p, band) => {
    expect(libraryPriorityBand(p)).toBe(band);
  });
});
