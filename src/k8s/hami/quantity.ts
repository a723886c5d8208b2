/**
 * Kubernetes resource quantities (`resource.Quantity`'s text form) as whole numbers. The API
 * server stores quantities in canonical form, so a pod that asked for `nvidia.com/gpumem: 10000`
 * arrives as `10k`: HAMi's counts must be read through the real grammar, not Number().
 */
import { fail, ok, type Result } from '../../domain/index.js';

const QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE]([+-]?\d+))?$/;

const SCALE: Readonly<Record<string, number>> = {
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
  n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
};

/** A quantity that must be a whole number >= 0 (extended resources are counted in whole units). */
export function parseWholeQuantity(value: unknown, field: string): Result<number> {
  const accepted = 'expected a whole number such as 3000 (Kubernetes quantity suffixes like 10k are read too)';
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && value >= 0 ? ok(value) : fail(field, 'malformed', `${value} is not a whole number >= 0; ${accepted}`);
  }
  if (typeof value !== 'string') return fail(field, 'malformed', `is a ${value === null ? 'null' : typeof value}; ${accepted}`);
  const m = QUANTITY.exec(value.trim());
  if (!m) return fail(field, 'malformed', `"${value}" is not a Kubernetes quantity; ${accepted}`);
  const [, sign, digits = '', suffix, exponent] = m;
  const scale = suffix !== undefined ? (SCALE[suffix] ?? 1) : exponent !== undefined ? 10 ** Number(exponent) : 1;
  const n = Number(digits) * scale;
  // Decimal suffixes multiply by powers of ten: round away float noise before testing wholeness.
  const rounded = Math.round(n);
  if (!Number.isFinite(n) || Math.abs(n - rounded) > 1e-9 * Math.max(1, Math.abs(n))) {
    return fail(field, 'notInteger', `"${value}" is not a whole number; ${accepted}`);
  }
  if (sign === '-' && rounded !== 0) return fail(field, 'negative', `"${value}" is negative; ${accepted}`);
  if (!Number.isSafeInteger(rounded)) return fail(field, 'outOfRange', `"${value}" is too large`);
  return ok(rounded);
}
