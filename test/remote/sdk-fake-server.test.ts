/**
 * The SDK against a worker that misbehaves: an in-process fake that shakes hands properly, then
 * answers a call with what a test gives it (wrong ids, short frames, noise, nothing at all). The
 * call must settle with one of the SDK's typed errors, promptly, never hang or throw anything
 * else; a fast-check property throws arbitrary answers (then the fake hangs up) at it.
 */
import type { Socket } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes, GsError } from '../../src/domain/index.js';
import { encodeHeader } from '../../src/remote/sdk/codec.js';
import { HEADER_BYTES, Op } from '../../src/remote/sdk/ops.js';
import { FakeWorker, reply } from './sdk-fake-worker.js';

const TYPED = new Set<string>([ErrorCodes.cuda, ErrorCodes.remoteProtocol, ErrorCodes.remoteLinkLost]);

/** What a call came to: 'ok', or the typed error's code; fails on any other error or after `ms`. */
async function settle(p: Promise<unknown>, ms = 3000): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: a hang`)), ms)));
  try {
    return await Promise.race([
      p.then(
        () => 'ok',
        (err: unknown) => {
          if (!(err instanceof GsError) || !TYPED.has(err.code)) throw new Error(`not a typed SDK error: ${String(err)}`);
          return err.code;
        },
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe('the SDK against a worker that answers wrongly', () => {
  const fake = new FakeWorker();
  beforeAll(() => fake.start());
  afterAll(() => fake.stop());

  const cases: [string, (s: Socket, op: number, id: number) => void, string][] = [
    ['an answer to another request id', (s, op, id) => s.write(reply(op, id + 1, 'i', [0])), ErrorCodes.remoteProtocol],
    ['an answer to another op', (s, _op, id) => s.write(reply(Op.MEM_FREE, id, '', [])), ErrorCodes.remoteProtocol],
    ['a frame without the reply flag', (s, op, id) => s.write(reply(op, id, 'i', [0]).fill(0, 6, 8)), ErrorCodes.remoteProtocol],
    ['a payload that is not the schema', (s, op, id) => s.write(reply(op, id, 'q', [0n])), ErrorCodes.remoteProtocol],
    ['an error answer with a payload', (s, op, id) => s.write(Buffer.concat([reply(op, id, 'i', [0]).fill(1, 12, 13)])), ErrorCodes.remoteProtocol],
    ['a header announcing 2 MiB', (s, op, id) => s.write(reply(op, id, 'i', [0]).fill(0x20, 2, 3)), ErrorCodes.remoteProtocol],
    ['copy data nobody asked for', (s) => s.write(Buffer.concat([reply(Op.DATA, 0, '', []).fill(4, 0, 1), Buffer.alloc(4)])), ErrorCodes.remoteProtocol],
    ['half a frame, then the connection closed', (s, op, id) => s.end(reply(op, id, 'i', [0]).subarray(0, 10)), ErrorCodes.remoteLinkLost],
    ['the connection reset', (s) => s.resetAndDestroy(), ErrorCodes.remoteLinkLost],
    ['a CUDA error', (s, op, id) => s.write(reply(op, id, '', [], 2)), ErrorCodes.cuda],
  ];
  it.each(cases)('%s: a typed error, the session then gone unless it was a CUDA error', async (_name, answer, code) => {
    fake.answer = answer;
    const s = await fake.connect();
    expect(await settle(s.contextDevice())).toBe(code);
    if (code === ErrorCodes.cuda) {
      expect(s.lost).toBeUndefined();
      await s.close();
    } else {
      expect(s.lost?.code).toBe(code);
      expect(await settle(s.memoryInfo())).toBe(code); // every later call: the same error, at once
    }
  });

  it('declares the link lost when a heartbeat goes unanswered, instead of hanging', async () => {
    const silent = new FakeWorker(); // shakes hands, then answers nothing, PING included
    silent.answersPing = false;
    await silent.start();
    const quiet = await silent.connect({ timers: { heartbeatMs: 50, pingTimeoutMs: 300 } });
    await new Promise((r) => setTimeout(r, 800));
    expect(quiet.lost?.code).toBe(ErrorCodes.remoteLinkLost);
    expect(quiet.lost?.message).toContain('heartbeat');
    expect(await settle(quiet.contextDevice())).toBe(ErrorCodes.remoteLinkLost);
    await silent.stop();
  });

  it('settles with a typed error or an answer, never a hang or another error, whatever the worker sends (fast-check)', async () => {
    const answerArb = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.record({ op: fc.constantFrom(Op.CTX_GET_DEVICE, Op.DATA, Op.PING, Op.MEM_ALLOC, 0, 7), flags: fc.integer({ min: 0, max: 9 }), idDelta: fc.integer({ min: -1, max: 1 }), status: fc.constantFrom(0, 1, 2, -1, 600), payload: fc.uint8Array({ maxLength: 12 }), lie: fc.integer({ min: -4, max: 4 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(answerArb, { minLength: 1, maxLength: 3 }), async (answers) => {
        fake.answer = (sock, _op, id) => {
          for (const a of answers) {
            if (a instanceof Uint8Array) {
              sock.write(a);
              continue;
            }
            const b = Buffer.alloc(HEADER_BYTES + a.payload.length);
            encodeHeader({ length: Math.max(0, a.payload.length + a.lie), op: a.op, flags: a.flags, id: (id + a.idDelta) >>> 0, status: a.status, ctx: 0n }, b);
            b.set(a.payload, HEADER_BYTES);
            sock.write(b);
          }
          sock.end(); // then gone: whatever it sent, the call must come to an end
        };
        const s = await fake.connect();
        const outcome = await settle(s.contextDevice());
        expect(['ok', ...TYPED]).toContain(outcome);
        await s.close();
      }),
      { numRuns: 150, seed: 20261207 },
    );
  });
});
