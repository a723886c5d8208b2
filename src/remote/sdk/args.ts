/**
 * A kernel's arguments as the launch's packed parameter buffer (docs/remote.md "Launches"). Each
 * argument says its C type (`arg.u32(5)`, `arg.f32(0.5)`, `arg.ptr(p)`; a bigint is a 64-bit
 * value, a device pointer most often), because a JavaScript number could be any of them. They are
 * placed at the offsets the worker's driver gave for the function (cuFuncGetParamInfo), or, when
 * it gave none, each at the next offset aligned to its size, as a C compiler lays out a struct.
 */
import { badArgument } from './errors.js';

/** One argument's bytes and the alignment its C type needs. */
export interface KernelArg {
  readonly bytes: Uint8Array;
  readonly align: number;
}

function scalar(size: number, write: (view: DataView) => void): KernelArg {
  const bytes = new Uint8Array(size);
  write(new DataView(bytes.buffer));
  return { bytes, align: size };
}

function integer(what: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw badArgument(`kernel argument ${what}(${String(v)}): an integer from ${min} to ${max}`);
  return v;
}

/** Typed kernel arguments. */
export const arg = {
  u8: (v: number): KernelArg => scalar(1, (d) => d.setUint8(0, integer('u8', v, 0, 0xff))),
  i32: (v: number): KernelArg => scalar(4, (d) => d.setInt32(0, integer('i32', v, -(2 ** 31), 2 ** 31 - 1), true)),
  u32: (v: number): KernelArg => scalar(4, (d) => d.setUint32(0, integer('u32', v, 0, 2 ** 32 - 1), true)),
  i64: (v: bigint | number): KernelArg => scalar(8, (d) => d.setBigInt64(0, BigInt.asIntN(64, BigInt(v)), true)),
  u64: (v: bigint | number): KernelArg => scalar(8, (d) => d.setBigUint64(0, BigInt.asUintN(64, BigInt(v)), true)),
  f32: (v: number): KernelArg => scalar(4, (d) => d.setFloat32(0, v, true)),
  f64: (v: number): KernelArg => scalar(8, (d) => d.setFloat64(0, v, true)),
  /** A device pointer (what malloc gave, plus an offset). */
  ptr: (v: bigint): KernelArg => scalar(8, (d) => d.setBigUint64(0, BigInt.asUintN(64, v), true)),
  /** A struct passed by value: its bytes as the kernel lays them out, aligned to `align`. */
  bytes: (v: Uint8Array, align = 8): KernelArg => {
    if (!Number.isInteger(align) || align < 1 || align > 256 || (align & (align - 1)) !== 0) throw badArgument(`kernel argument bytes(align ${String(align)}): a power of two from 1 to 256`);
    return { bytes: Uint8Array.from(v), align };
  },
};

/** What launch accepts: the packed buffer itself, or the arguments one by one. */
export type KernelArgs = Uint8Array | readonly (KernelArg | bigint)[];

/** (offset, size) of each parameter, as the worker's driver reported them. */
export type ParamLayout = readonly (readonly [number, number])[];

/** The most parameter bytes a launch carries (the worker's limit). */
export const MAX_PARAM_BYTES = 32768;

/** The launch's parameter buffer; the argument error when the arguments do not fit the function. */
export function packArgs(args: KernelArgs, layout: ParamLayout | undefined, fn: string): Uint8Array {
  if (args instanceof Uint8Array) {
    if (args.length > MAX_PARAM_BYTES) throw badArgument(`${fn}: ${args.length} parameter bytes (at most ${MAX_PARAM_BYTES})`);
    return args;
  }
  const items = args.map((a) => (typeof a === 'bigint' ? arg.u64(a) : a));
  if (layout !== undefined && layout.length > 0) {
    if (items.length !== layout.length) throw badArgument(`${fn} takes ${layout.length} parameters, ${items.length} given`);
    const size = Math.max(...layout.map(([off, n]) => off + n));
    const out = new Uint8Array(size);
    items.forEach((a, i) => {
      const [off, n] = layout[i] as readonly [number, number];
      if (a.bytes.length !== n) throw badArgument(`${fn}: parameter ${i} is ${n} bytes, the argument ${a.bytes.length}`);
      out.set(a.bytes, off);
    });
    return out;
  }
  let size = 0;
  const offsets = items.map((a) => {
    const at = Math.ceil(size / a.align) * a.align;
    size = at + a.bytes.length;
    return at;
  });
  if (size > MAX_PARAM_BYTES) throw badArgument(`${fn}: ${size} parameter bytes (at most ${MAX_PARAM_BYTES})`);
  const out = new Uint8Array(size);
  items.forEach((a, i) => out.set(a.bytes, offsets[i]));
  return out;
}
