/**
 * The frame header and payloads of docs/remote.md, encoded and decoded by each op's schema
 * (ops.ts). Pure: bytes in, values out. Decoding never throws anything but the SDK's protocol
 * error (GS_ERR_REMOTE_PROTOCOL): a field past the end, a blob longer than what is left, bytes
 * left over, an unknown op or flag, a length over the cap (test/remote/sdk-codec.test.ts
 * throws arbitrary bytes at it).
 */
import { protocolError } from './errors.js';
import { FLAGS_KNOWN, HEADER_BYTES, MAX_PAYLOAD, opInfo, type Schema } from './ops.js';

export interface Header {
  readonly length: number;
  readonly op: number;
  readonly flags: number;
  readonly id: number;
  readonly status: number;
  readonly ctx: bigint;
}

/** A payload field's value: u32/i32 as numbers, u64 as a bigint, a blob as its bytes. */
export type Field = number | bigint | Uint8Array;

export function encodeHeader(h: Header, out: Buffer, at = 0): void {
  out.writeUInt32LE(h.length, at);
  out.writeUInt16LE(h.op, at + 4);
  out.writeUInt16LE(h.flags, at + 6);
  out.writeUInt32LE(h.id >>> 0, at + 8);
  out.writeInt32LE(h.status, at + 12);
  out.writeBigUInt64LE(h.ctx, at + 16);
}

/** Decodes and validates a header (length cap, known op, known flags), as gsr_header_decode does. */
export function decodeHeader(b: Uint8Array, at = 0): Header {
  if (b.length - at < HEADER_BYTES) throw protocolError(`a header needs ${HEADER_BYTES} bytes, ${b.length - at} given`);
  const v = new DataView(b.buffer, b.byteOffset + at, HEADER_BYTES);
  const h: Header = {
    length: v.getUint32(0, true),
    op: v.getUint16(4, true),
    flags: v.getUint16(6, true),
    id: v.getUint32(8, true),
    status: v.getInt32(12, true),
    ctx: v.getBigUint64(16, true),
  };
  if (h.length > MAX_PAYLOAD) throw protocolError(`a frame of ${h.length} bytes (at most ${MAX_PAYLOAD})`);
  if (opInfo(h.op) === undefined) throw protocolError(`unknown op ${h.op}`);
  if ((h.flags & ~FLAGS_KNOWN) !== 0) throw protocolError(`unknown flags 0x${h.flags.toString(16)}`);
  return h;
}

/** The encoded size of `fields` by `schema` (blobs by their length). */
export function payloadBytes(schema: string, fields: readonly Field[]): number {
  let n = 0;
  for (let i = 0; i < schema.length; i++) {
    const c = schema[i];
    n += c === 'q' ? 8 : c === 'b' ? 4 + (fields[i] as Uint8Array).length : 4;
  }
  return n;
}

/**
 * Writes `fields` by `schema` into out at `at`; returns the offset after them. The caller sized
 * `out` with payloadBytes. A field of the wrong type for its letter is a bug in the SDK: thrown.
 */
export function encodePayload(schema: string, fields: readonly Field[], out: Buffer, at: number): number {
  if (fields.length !== schema.length) throw new TypeError(`schema ${schema} takes ${schema.length} fields, ${fields.length} given`);
  for (let i = 0; i < schema.length; i++) {
    const f = fields[i];
    switch (schema[i]) {
      case 'u':
        at = out.writeUInt32LE(Number(f) >>> 0, at);
        break;
      case 'i':
        at = out.writeInt32LE(Number(f) | 0, at);
        break;
      case 'q':
        at = out.writeBigUInt64LE(BigInt.asUintN(64, typeof f === 'bigint' ? f : BigInt(f as number)), at);
        break;
      default: {
        const blob = f as Uint8Array;
        at = out.writeUInt32LE(blob.length, at);
        out.set(blob, at);
        at += blob.length;
      }
    }
  }
  return at;
}

/**
 * Decodes a payload by `schema`: every read bounds-checked, the payload consumed exactly. Blobs
 * are views into `payload` (copy them to keep them past the next frame).
 */
export function decodePayload(schema: string, payload: Uint8Array, what: string): Field[] {
  const v = new DataView(payload.buffer, payload.byteOffset, payload.length);
  const out: Field[] = [];
  let at = 0;
  const need = (n: number): void => {
    if (payload.length - at < n) throw protocolError(`${what}: the payload ends inside a field (${payload.length} bytes)`);
  };
  for (let i = 0; i < schema.length; i++) {
    switch (schema[i]) {
      case 'u':
        need(4);
        out.push(v.getUint32(at, true));
        at += 4;
        break;
      case 'i':
        need(4);
        out.push(v.getInt32(at, true));
        at += 4;
        break;
      case 'q':
        need(8);
        out.push(v.getBigUint64(at, true));
        at += 8;
        break;
      default: {
        need(4);
        const n = v.getUint32(at, true);
        at += 4;
        need(n);
        out.push(payload.subarray(at, at + n));
        at += n;
      }
    }
  }
  if (at !== payload.length) throw protocolError(`${what}: ${payload.length - at} bytes left over`);
  return out;
}

/** An op's reply schema; the protocol error for an op whose replies carry no schema (DATA) or none at all. */
export function replySchema(op: number): string {
  const s: Schema | undefined = opInfo(op)?.reply;
  if (s === undefined || s === null) throw protocolError(`no reply schema for op ${op}`);
  return s;
}
