/**
 * The SDK's codec (src/remote/sdk/codec.ts, frames.ts) against the C side's tables and against
 * arbitrary bytes: the op table and schemas equal native/remote/proto.h's GSR_OP_LIST, the
 * CUresult names equal gs_cuda_types.h's list, payloads round-trip, and the decoder, fed anything
 * (fast-check), throws nothing but the SDK's protocol error.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, GsError } from '../../src/domain/index.js';
import { decodeHeader, decodePayload, encodeHeader, encodePayload, payloadBytes, type Field } from '../../src/remote/sdk/codec.js';
import { cudaResultName, cudaResults } from '../../src/remote/sdk/cuda-result.js';
import { FrameReader, type Frame } from '../../src/remote/sdk/frames.js';
import { CHUNK_BYTES, FLAG_MORE, FLAG_NO_REPLY, FLAG_REPLY, HEADER_BYTES, KEY_BYTES, MAGIC, MAX_PAYLOAD, Op, opInfo, opTable } from '../../src/remote/sdk/ops.js';
import { REPO_ROOT } from '../helpers/cli.js';

const protoH = readFileSync(`${REPO_ROOT}native/remote/proto.h`, 'utf8');

/** Throws the SDK's protocol error or nothing; any other throw fails the property. */
function onlyProtocolErrors(run: () => void): void {
  try {
    run();
  } catch (err) {
    if (!(err instanceof GsError) || err.code !== ErrorCodes.remoteProtocol) throw err;
  }
}

describe('the SDK speaks the C codec (native/remote/proto.h)', () => {
  it('has the same ops, numbers and schemas, in the same order', () => {
    const c = [...protoH.matchAll(/X\((\w+), (\d+), (NULL|"[uiqb]*"), (NULL|"[uiqb]*")\)/g)].map((m) => [m[1], Number(m[2]), m[3] === 'NULL' ? null : m[3]?.slice(1, -1), m[4] === 'NULL' ? null : m[4]?.slice(1, -1)]);
    expect(c.length).toBeGreaterThan(30);
    expect(opTable().map((r) => [...r])).toEqual(c);
  });

  it('has the same constants', () => {
    const define = (name: string): number => Number(new RegExp(`#define ${name} (\\S+)`).exec(protoH)?.[1]?.replace(/u$/, '') ?? NaN);
    expect(MAGIC).toBe(define('GSR_MAGIC'));
    expect(HEADER_BYTES).toBe(define('GSR_HEADER_BYTES'));
    expect(KEY_BYTES).toBe(define('GSR_KEY_BYTES'));
    expect(FLAG_REPLY).toBe(define('GSR_FLAG_REPLY'));
    expect(FLAG_NO_REPLY).toBe(define('GSR_FLAG_NO_REPLY'));
    expect(FLAG_MORE).toBe(define('GSR_FLAG_MORE'));
    expect(protoH).toContain('#define GSR_CHUNK_BYTES (1u << 20)');
    expect(CHUNK_BYTES).toBe(2 ** 20);
    expect(protoH).toContain('#define GSR_MAX_PAYLOAD (GSR_CHUNK_BYTES + 64u)');
    expect(MAX_PAYLOAD).toBe(2 ** 20 + 64);
  });

  it('names every CUresult as native/include/gs_cuda_types.h lists them', () => {
    const h = readFileSync(`${REPO_ROOT}native/include/gs_cuda_types.h`, 'utf8');
    const list = /#define GS_CUDA_RESULT_LIST\(X\)([\s\S]*?)\n\n/.exec(h)?.[1] ?? '';
    const c = [...list.matchAll(/X\((\w+), (\d+)\)/g)].map((m) => [Number(m[2]), m[1]]);
    expect(c.length).toBeGreaterThan(90);
    expect(cudaResults()).toEqual(c);
    expect(cudaResultName(2)).toBe('CUDA_ERROR_OUT_OF_MEMORY');
    expect(cudaResultName(12345)).toBe('CUDA_ERROR_12345');
  });
});

describe('frames and payloads', () => {
  it('round-trips a header and every request schema', () => {
    const h = { length: 12, op: Op.MEM_ALLOC, flags: FLAG_NO_REPLY, id: 0xfffffffe, status: -3, ctx: 0x0100000000000001n };
    const b = Buffer.alloc(HEADER_BYTES);
    encodeHeader(h, b);
    expect(decodeHeader(b)).toEqual(h);
    for (const [name, , request] of opTable()) {
      if (request === null) continue;
      const fields: Field[] = [...request].map((c, i) => (c === 'q' ? 2n ** 63n + BigInt(i) : c === 'b' ? Buffer.from(`${name}-${i}`) : c === 'i' ? -i - 1 : 0xfffffff0 + i));
      const out = Buffer.alloc(payloadBytes(request, fields));
      expect(encodePayload(request, fields, out, 0)).toBe(out.length);
      expect(decodePayload(request, out, name).map((f) => (f instanceof Uint8Array ? Buffer.from(f).toString() : f))).toEqual(fields.map((f) => (f instanceof Uint8Array ? Buffer.from(f).toString() : f)));
    }
  });

  it('refuses a payload over the cap, an unknown op or flag, a short field, a long blob, bytes left over', () => {
    const b = Buffer.alloc(HEADER_BYTES);
    const header = (length: number, op: number, flags: number): Buffer => (encodeHeader({ length, op, flags, id: 1, status: 0, ctx: 0n }, b), b);
    expect(() => decodeHeader(header(MAX_PAYLOAD + 1, Op.DATA, 0))).toThrow(/at most/);
    expect(() => decodeHeader(header(0, 999, 0))).toThrow(/unknown op 999/);
    expect(() => decodeHeader(header(0, Op.PING, 0x8))).toThrow(/unknown flags/);
    expect(() => decodePayload('q', Buffer.alloc(4), 'x')).toThrow(/ends inside a field/);
    expect(() => decodePayload('b', Buffer.from([9, 0, 0, 0, 1]), 'x')).toThrow(/ends inside a field/);
    expect(() => decodePayload('u', Buffer.alloc(5), 'x')).toThrow(/1 bytes left over/);
  });

  it('reassembles frames split anywhere and puts DATA payloads straight into their sink', () => {
    const frames: Frame[] = [];
    const sink = Buffer.alloc(10);
    const reader = new FrameReader(
      (f) => frames.push(f),
      () => sink.subarray(3, 8),
    );
    const bytes = Buffer.alloc(3 * HEADER_BYTES + 4 + 5);
    encodeHeader({ length: 4, op: Op.CTX_GET_DEVICE, flags: FLAG_REPLY, id: 7, status: 0, ctx: 0n }, bytes, 0);
    bytes.writeInt32LE(3, HEADER_BYTES);
    encodeHeader({ length: 0, op: Op.PING, flags: FLAG_REPLY, id: 8, status: 0, ctx: 0n }, bytes, HEADER_BYTES + 4);
    encodeHeader({ length: 5, op: Op.DATA, flags: FLAG_REPLY, id: 0, status: 0, ctx: 0n }, bytes, 2 * HEADER_BYTES + 4);
    bytes.write('hello', 3 * HEADER_BYTES + 4);
    for (let i = 0; i < bytes.length; i++) reader.push(bytes.subarray(i, i + 1));
    expect(frames.map((f) => [f.header.op, f.header.id, f.payload.length])).toEqual([[Op.CTX_GET_DEVICE, 7, 4], [Op.PING, 8, 0], [Op.DATA, 0, 5]]);
    expect(sink.toString('latin1', 3, 8)).toBe('hello');
  });

  it('throws nothing but the protocol error, whatever bytes come and however they are split (fast-check)', () => {
    const schemas = [...new Set(opTable().flatMap(([, , q, r]) => [q, r]).filter((s): s is string => s !== null))];
    // Frames with a valid-looking header and random payload bytes (more reach the payload decoder), and plain noise.
    const frameArb = fc.record({ op: fc.constantFrom(...opTable().map(([, n]) => n), 0, 4, 999), flags: fc.integer({ min: 0, max: 15 }), status: fc.integer(), payload: fc.uint8Array({ maxLength: 64 }), lie: fc.integer({ min: -8, max: 8 }) }).map((f) => {
      const b = Buffer.alloc(HEADER_BYTES + f.payload.length);
      encodeHeader({ length: Math.max(0, f.payload.length + f.lie), op: f.op, flags: f.flags, id: 1, status: f.status | 0, ctx: 0n }, b);
      b.set(f.payload, HEADER_BYTES);
      return new Uint8Array(b);
    });
    fc.assert(
      fc.property(fc.array(fc.oneof(frameArb, fc.uint8Array({ maxLength: 80 })), { maxLength: 6 }), fc.array(fc.nat(200), { maxLength: 5 }), fc.boolean(), (parts, cuts, withSink) => {
        const stream = Buffer.concat(parts);
        const reader = new FrameReader(
          (f) => {
            const info = opInfo(f.header.op);
            for (const s of schemas) onlyProtocolErrors(() => decodePayload(s, f.payload, 'fuzz'));
            if (info?.reply) onlyProtocolErrors(() => decodePayload(info.reply as string, f.payload, 'fuzz'));
          },
          (h) => (withSink ? Buffer.alloc(h.length) : undefined),
        );
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        onlyProtocolErrors(() => {
          let at = 0;
          for (const p of [...points, stream.length]) {
            reader.push(stream.subarray(at, p));
            at = p;
          }
        });
      }),
      { numRuns: 2000, seed: 20261207 },
    );
  });
});
