import { describe, expect, it } from 'vitest';
import { formatBytes, parseBytes, parseMemoryQuantity, parsePercent, resolveMemory } from './units.js';

describe('parseBytes accepts human sizes', () => {
  it.each([
    ['8Gi', 8 * 2 ** 30],
    ['8192Mi', 8 * 2 ** 30],
    ['8G', 8e9],
    ['8GB', 8e9],
    ['8GiB', 8 * 2 ** 30],
    ['1.5Gi', 1.5 * 2 ** 30],
    ['512', 512],
    ['1073741824', 2 ** 30],
    ['  4Ki ', 4096],
    ['100k', 100_000],
    ['.5Mi', 2 ** 19],
  ])('%s is %d bytes', (input, bytes) => {
    expect(parseBytes(input)).toEqual({ ok: true, value: bytes });
  });
});

describe('parseBytes rejects bad sizes with a precise reason', () => {
  it.each([
    ['', 'empty', /is empty/],
    ['-8Gi', 'negative', /negative/],
    ['0', 'zero', /zero/],
    ['0Gi', 'zero', /zero/],
    ['8Xi', 'unknownUnit', /unknown unit "Xi".*accepted/],
    ['4096m', 'ambiguousUnit', /ambiguous: use Mi/],
    ['4g', 'ambiguousUnit', /use Gi/],
    ['eight', 'malformed', /not a size/],
    ['8 Gi', 'malformed', /not a size/],
    ['1.5', 'notInteger', /whole number of bytes/],
    ['99999999Pi', 'outOfRange', /too large/],
  ])('%j -> %s', (input, code, message) => {
    const r = parseBytes(input);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.issues[0]?.code).toBe(code);
      expect(r.issues[0]?.message).toMatch(message);
      expect(r.issues[0]?.field).toBe('memory');
    }
  });
});

describe('parsePercent', () => {
  it.each([
    ['50%', 0.5],
    ['100%', 1],
    ['30', 0.3],
    ['12.5%', 0.125],
  ])('%s is %d', (input, v) => {
    expect(parsePercent(input, 'compute')).toEqual({ ok: true, value: v });
  });
  it.each([
    ['101%', 'outOfRange'],
    ['0%', 'zero'],
    ['-5%', 'negative'],
    ['half', 'malformed'],
  ])('rejects %s (%s)', (input, code) => {
    const r = parsePercent(input, 'compute');
    expect(r.ok ? null : r.issues[0]?.code).toBe(code);
  });
  it('requires the sign when asked', () => {
    expect(parsePercent('50', 'memory', { requireSign: true }).ok).toBe(false);
  });
});

describe('memory quantities', () => {
  it('reads percentages as fractions of the GPU', () => {
    expect(parseMemoryQuantity('25%')).toEqual({ ok: true, value: { kind: 'fraction', fraction: 0.25 } });
  });
  it('resolves a fraction against a GPU, rounded down to whole MiB', () => {
    const total = 81559 * 2 ** 20;
    expect(resolveMemory({ kind: 'fraction', fraction: 0.5 }, total)).toBe(40779 * 2 ** 20);
    expect(resolveMemory({ kind: 'bytes', bytes: 123 }, total)).toBe(123);
  });
  it('formats bytes for people', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(512 * 2 ** 20)).toBe('512 MiB');
    expect(formatBytes(81559 * 2 ** 20)).toBe('79.6 GiB');
  });
});
