import { fail, ok, type Result } from './result.js';

/**
 * Byte multipliers for quantity suffixes. Binary suffixes (Ki, Mi, Gi...) follow Kubernetes;
 * decimal ones (k, M, G...) too. The `B`-suffixed forms are what people type (8GiB, 500MB).
 */
const BYTE_UNITS: ReadonlyMap<string, number> = new Map([
  ['', 1],
  ['B', 1],
  ['Ki', 2 ** 10], ['Mi', 2 ** 20], ['Gi', 2 ** 30], ['Ti', 2 ** 40], ['Pi', 2 ** 50],
  ['KiB', 2 ** 10], ['MiB', 2 ** 20], ['GiB', 2 ** 30], ['TiB', 2 ** 40], ['PiB', 2 ** 50],
  ['k', 1e3], ['K', 1e3], ['M', 1e6], ['G', 1e9], ['T', 1e12], ['P', 1e15],
  ['kB', 1e3], ['KB', 1e3], ['MB', 1e6], ['GB', 1e9], ['TB', 1e12], ['PB', 1e15],
]);

/**
 * Suffixes we refuse because they mean different things in different tools: Kubernetes reads
 * `m` as milli, HAMi-core's environment reads `4096m` as MiB. Guessing would silently give a
 * job 1000x too much or too little memory, so we ask the user to say which.
 */
const AMBIGUOUS_UNITS: ReadonlyMap<string, string> = new Map([
  ['m', 'use Mi (2^20 bytes) or M (10^6 bytes)'],
  ['g', 'use Gi (2^30 bytes) or G (10^9 bytes)'],
  ['t', 'use Ti (2^40 bytes) or T (10^12 bytes)'],
  ['mb', 'use MiB (2^20 bytes) or MB (10^6 bytes)'],
  ['gb', 'use GiB (2^30 bytes) or GB (10^9 bytes)'],
]);

const ACCEPTED_UNITS_HINT = 'accepted: plain bytes, Ki/Mi/Gi/Ti (powers of 2), k/M/G/T (powers of 10), KiB/MiB/GiB, KB/MB/GB';

const QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)([A-Za-z]*)$/;
const PERCENT = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)%$/;

/** Memory asked per GPU: an absolute size, or a share of whichever GPU the slice lands on. */
export type MemoryQuantity =
  | { readonly kind: 'bytes'; readonly bytes: number }
  | { readonly kind: 'fraction'; readonly fraction: number };

/** Parses `8Gi`, `8192Mi`, `8G`, `1.5GiB`, `1073741824` into whole bytes (> 0). */
export function parseBytes(input: string, field = 'memory'): Result<number> {
  const text = input.trim();
  if (text === '') return fail(field, 'empty', 'is empty; give a size such as 8Gi, 512Mi or 50%');
  const m = QUANTITY.exec(text);
  if (!m) return fail(field, 'malformed', `"${input}" is not a size; expected a number with an optional unit such as 8Gi or 8192Mi (${ACCEPTED_UNITS_HINT})`);
  const [, sign, digits, unit] = m as unknown as [string, string, string, string];
  const ambiguous = AMBIGUOUS_UNITS.get(unit);
  if (ambiguous !== undefined) return fail(field, 'ambiguousUnit', `unit "${unit}" in "${input}" is ambiguous: ${ambiguous}`);
  const multiplier = BYTE_UNITS.get(unit);
  if (multiplier === undefined) return fail(field, 'unknownUnit', `unknown unit "${unit}" in "${input}" (${ACCEPTED_UNITS_HINT})`);
  if (sign === '-') return fail(field, 'negative', `"${input}" is negative; a size must be greater than zero`);
  const bytes = Number(digits) * multiplier;
  if (bytes === 0) return fail(field, 'zero', `"${input}" is zero; a size must be greater than zero`);
  if (!Number.isSafeInteger(Math.round(bytes))) return fail(field, 'outOfRange', `"${input}" is too large (more than ${formatBytes(Number.MAX_SAFE_INTEGER)})`);
  if (Math.abs(bytes - Math.round(bytes)) > 1e-6) return fail(field, 'notInteger', `"${input}" is not a whole number of bytes (${bytes})`);
  return ok(Math.round(bytes));
}

/** Parses `50%` into the fraction 0.5; accepts (0, 100]. */
export function parsePercent(input: string, field: string, options: { requireSign?: boolean } = {}): Result<number> {
  const text = input.trim();
  if (text === '') return fail(field, 'empty', 'is empty; give a percentage such as 50%');
  const m = PERCENT.exec(text) ?? (options.requireSign ? null : /^([+-]?)(\d+(?:\.\d*)?|\.\d+)$/.exec(text));
  if (!m) return fail(field, 'malformed', `"${input}" is not a percentage; expected a number from 1 to 100, e.g. 30 or 30%`);
  const [, sign, digits] = m as unknown as [string, string, string];
  const value = Number(digits);
  if (sign === '-') return fail(field, 'negative', `"${input}" is negative; expected a percentage greater than 0 and at most 100`);
  if (value === 0) return fail(field, 'zero', `"${input}" is zero; expected a percentage greater than 0 and at most 100`);
  if (value > 100) return fail(field, 'outOfRange', `"${input}" is over 100%; expected a percentage greater than 0 and at most 100`);
  return ok(value / 100);
}

/** Parses a memory request: a size (`8Gi`) or a share of the GPU (`50%`). */
export function parseMemoryQuantity(input: string, field = 'memory'): Result<MemoryQuantity> {
  if (input.trim().endsWith('%')) {
    const r = parsePercent(input, field, { requireSign: true });
    return r.ok ? ok({ kind: 'fraction', fraction: r.value }) : r;
  }
  const r = parseBytes(input, field);
  return r.ok ? ok({ kind: 'bytes', bytes: r.value }) : r;
}

/** A share (0-1] as a percent, rounded to 1e-4 so float noise (0.333 * 100) does not show. */
export function sharePercent(share: number): number {
  return Math.round(share * 1e6) / 1e4;
}

/** Bytes for people: binary units, up to one decimal (`79.6 GiB`, `512 MiB`, `17 B`). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let i = 0;
  while (Math.abs(value) >= 1024 && i < units.length - 1) {
    value /= 1024;
    i += 1;
  }
  const text = i === 0 || Number.isInteger(value) ? String(value) : value.toFixed(1).replace(/\.0$/, '');
  return `${text} ${units[i]}`;
}

/** Resolves a memory quantity against a GPU of `totalBytes`; fractions round down to whole MiB. */
export function resolveMemory(quantity: MemoryQuantity, totalBytes: number): number {
  if (quantity.kind === 'bytes') return quantity.bytes;
  const mib = 2 ** 20;
  return Math.floor((quantity.fraction * totalBytes) / mib) * mib;
}
