/**
 * The TypeScript SDK (src/remote/sdk) end to end against the real worker on the fake driver over
 * loopback (docs/remote.md "TypeScript SDK"): every call, the worker's checks coming back as
 * typed errors, errors of batched calls at the next synchronizing call, the slice's memory limit
 * held by libgpushare in the worker, heartbeats keeping an idle session, and a dropped link as an
 * error, not a hang.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCodes, GsError } from '../../src/domain/index.js';
import { CudaError, RemoteSession, arg, type Stream } from '../../src/remote/sdk/index.js';
import { NATIVE, startWorker, workerBuilt, type Worker } from './sdk-worker.js';

const MiB = 2 ** 20;

/** The rejection of `p` (fails the test when it resolves). */
async function rejection(p: Promise<unknown>): Promise<GsError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(GsError);
    return err as GsError;
  }
  throw new Error('expected a rejection');
}

function cudaResult(err: GsError): string {
  expect(err).toBeInstanceOf(CudaError);
  expect(err.code).toBe(ErrorCodes.cuda);
  return (err as CudaError).resultName;
}

describe.skipIf(!workerBuilt)('RemoteSession against the worker on the fake driver', () => {
  let worker: Worker | undefined;
  let session: RemoteSession | undefined;
  afterEach(async () => {
    await session?.close().catch(() => undefined);
    worker?.kill();
    session = undefined;
    worker = undefined;
  });

  it('answers every call, from device queries to launches and events, then the worker frees all and exits', async () => {
    worker = await startWorker();
    const s = (session = await RemoteSession.connect({ endpoint: worker.endpoint, key: worker.key }));
    expect(s.driverVersion).toBeGreaterThanOrEqual(12000);
    const [dev, ...others] = await s.devices();
    expect(others).toEqual([]);
    expect(dev?.name).toContain('H100');
    expect(dev?.uuid).toMatch(/^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(dev?.computeCapability).toEqual([9, 0]);
    expect(dev?.multiprocessors).toBe(132);
    expect(dev?.pciBusId).toMatch(/^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-9]$/i);
    expect(await s.devices()).toBe(await s.devices()); // asked once: immutable answers are kept
    expect(await s.contextDevice()).toBe(0);
    expect(await s.attribute(16)).toBe(132);

    // Memory: a copy of several chunks each way (1 MiB frames), device to device, memset.
    const before = await s.memoryInfo();
    const n = 5 * MiB + 1;
    const host = Buffer.alloc(n);
    for (let i = 0; i < n; i++) host[i] = (i * 7 + 3) & 0xff;
    const a = await s.malloc(n);
    const b = await s.malloc(n);
    expect((await s.memoryInfo()).free).toBeLessThanOrEqual(before.free - 2n * BigInt(n));
    await s.copyIn(a, host);
    expect(Buffer.compare(Buffer.from(await s.copyOut(a, n)), host)).toBe(0);
    await s.copyDevice(b, a, n);
    const into = Buffer.alloc(n);
    expect(await s.copyOut(b, n, { into })).toBe(into);
    expect(Buffer.compare(into, host)).toBe(0);
    await s.memset(b + 100n, 0xab, 50);
    const head = await s.copyOut(b, 200);
    expect([head[99], head[100], head[149], head[150]]).toEqual([host[99], 0xab, 0xab, host[150]]);

    // On a stream, returning nothing: an async copy and memset, then the stream's synchronize.
    const stream = await s.createStream();
    const next = Buffer.alloc(n, 0x11);
    s.copyInAsync(a, next, stream);
    s.memsetAsync(a, 0x5a, 10, stream);
    await s.streamSynchronize(stream);
    expect(await s.streamQuery(stream)).toBe(true);
    const got = await s.copyOut(a, n, { stream });
    expect([got[9], got[10], got[n - 1]]).toEqual([0x5a, 0x11, 0x11]);

    // A module, its kernels, events: the fake's "sleep" kernel runs the microseconds of its first parameter.
    const mod = await s.loadModule('// sdk test\n.version 8.0\n.target sm_90\n');
    const sleep = await s.function(mod, 'sleep');
    expect(sleep.layout).toBeUndefined(); // the fake driver has no cuFuncGetParamInfo
    const e0 = await s.createEvent();
    const e1 = await s.createEvent();
    s.record(e0, stream);
    s.launch(sleep, 1, 1, [arg.u64(3000)], { stream });
    s.record(e1, stream);
    await s.eventSynchronize(e1);
    expect(await s.eventQuery(e1)).toBe(true);
    const ms = await s.elapsedMs(e0, e1);
    expect(ms).toBeGreaterThanOrEqual(2.9);
    expect(ms).toBeLessThan(100);
    // The same launch with the packed buffer itself, on the default stream.
    const packed = Buffer.alloc(8);
    packed.writeBigUInt64LE(2000n);
    s.record(e0);
    s.launch(sleep, [1, 1, 1], [1, 1, 1], packed);
    s.record(e1);
    await s.synchronize();
    expect(await s.elapsedMs(e0, e1)).toBeGreaterThanOrEqual(1.9);
    const sleep0 = await s.function(mod, 'sleep_0');
    for (let i = 0; i < 2000; i++) s.launch(sleep0, 1, 1);
    await s.synchronize();

    await s.destroyEvent(e0);
    await s.destroyEvent(e1);
    expect(cudaResult(await rejection(s.eventQuery(e1)))).toBe('CUDA_ERROR_INVALID_HANDLE');
    await s.destroyStream(stream);
    await s.unloadModule(mod);
    await s.free(a);
    await s.free(b);
    await s.close();
    expect((await rejection(s.contextDevice())).code).toBe(ErrorCodes.remoteLinkLost);
    const end = await worker.ended;
    expect(end.code).toBe(0);
    expect(end.stderr).toContain('everything freed');
  });

  it("turns the worker's checks into CUDA errors by name, and a batched call's error into the next synchronizing call's, once", async () => {
    worker = await startWorker();
    const s = (session = await RemoteSession.connect({ endpoint: worker.endpoint, key: worker.key }));
    const p = await s.malloc(4096);
    expect(cudaResult(await rejection(s.copyIn(p + 4000n, Buffer.alloc(200))))).toBe('CUDA_ERROR_INVALID_VALUE');
    expect(cudaResult(await rejection(s.copyOut(0x1000n, 16)))).toBe('CUDA_ERROR_INVALID_VALUE'); // not the session's memory
    expect(cudaResult(await rejection(s.memset(p - 1n, 0, 2)))).toBe('CUDA_ERROR_INVALID_VALUE');
    expect(cudaResult(await rejection(s.free(p + 64n)))).toBe('CUDA_ERROR_INVALID_VALUE');
    const forged: Stream = { kind: 'stream', id: 0x0400000000000999n };
    expect(cudaResult(await rejection(s.streamSynchronize(forged)))).toBe('CUDA_ERROR_INVALID_HANDLE');
    const err = await rejection(s.streamSynchronize(forged));
    expect(err.message).toBe('cuStreamSynchronize: CUDA_ERROR_INVALID_HANDLE (400)');
    expect(err.details).toEqual({ call: 'cuStreamSynchronize', result: 400, resultName: 'CUDA_ERROR_INVALID_HANDLE' });

    const mod = await s.loadModule(Buffer.from('// bytes\n'));
    const k = await s.function(mod, 'sleep_0');
    s.launch(k, 1, 1, [], { stream: forged }); // returns at once: the worker's error waits for a synchronizing call
    expect(await s.memoryInfo()).toBeDefined(); // not synchronizing: unaffected
    expect(cudaResult(await rejection(s.synchronize()))).toBe('CUDA_ERROR_INVALID_HANDLE');
    await s.synchronize(); // reported once
    s.memsetAsync(p, 1, 8192); // past the allocation
    expect(cudaResult(await rejection(s.copyOut(p, 16)))).toBe('CUDA_ERROR_INVALID_VALUE');
    expect((await s.copyOut(p, 16)).length).toBe(16);

    // Bad arguments: refused here, nothing sent, the session unharmed.
    expect(() => s.launch(k, 0, 1)).toThrow(/grid/);
    expect(() => s.memsetAsync(p, 256, 1)).toThrow(/byte value/);
    expect((await rejection(s.malloc(-1))).code).toBe(ErrorCodes.invalidArgument);
    expect((await rejection(s.function(mod, ''))).code).toBe(ErrorCodes.invalidArgument);
    expect(() => s.launch(k, 1, 1, [arg.u32(2 ** 32)])).toThrow(GsError);
    await s.free(p);
    expect(cudaResult(await rejection(s.free(p)))).toBe('CUDA_ERROR_INVALID_VALUE'); // twice
  });

  it("holds the session to the slice's memory limit, enforced by libgpushare in the worker", async () => {
    worker = await startWorker({ GPUSHARE_FAKE_CUDA: JSON.stringify({ contextBytes: 4 * MiB }), LD_PRELOAD: `${NATIVE}/libgpushare.so`, GPUSHARE_MEMORY_LIMIT: '256Mi' });
    const s = (session = await RemoteSession.connect({ endpoint: worker.endpoint, key: worker.key }));
    expect((await s.memoryInfo()).total).toBe(256n * BigInt(MiB));
    let got = 0;
    let refused: GsError | undefined;
    while (got < 1024 * MiB && refused === undefined) {
      try {
        await s.malloc(MiB);
        got += MiB;
      } catch (err) {
        refused = err as GsError;
      }
    }
    expect(refused && cudaResult(refused)).toBe('CUDA_ERROR_OUT_OF_MEMORY');
    expect(got).toBeGreaterThanOrEqual(200 * MiB);
    expect(got).toBeLessThanOrEqual(256 * MiB);
  });

  it('refuses a wrong key with a CUDA error that says so, and an endpoint with nothing listening as a lost link', async () => {
    worker = await startWorker();
    const wrong = await rejection(RemoteSession.connect({ endpoint: worker.endpoint, key: 'ab'.repeat(32) }));
    expect(cudaResult(wrong)).toBe('CUDA_ERROR_NOT_PERMITTED');
    expect(wrong.message).toContain('refused the session key');
    expect((await worker.ended).code).toBe(5); // a key gets one guess
    const none = await rejection(RemoteSession.connect({ endpoint: worker.endpoint, key: worker.key, connectTimeoutMs: 2000 }));
    expect(none.code).toBe(ErrorCodes.remoteLinkLost);
    expect((await rejection(RemoteSession.connect({ endpoint: 'no-port', key: worker.key }))).code).toBe(ErrorCodes.invalidArgument);
    expect((await rejection(RemoteSession.connect({ endpoint: worker.endpoint, key: 'short' }))).code).toBe(ErrorCodes.invalidArgument);
  });

  it('keeps an idle session alive with heartbeats past the worker idle timeout', async () => {
    worker = await startWorker({}, ['--idle-timeout-ms', '600']);
    const s = (session = await RemoteSession.connect({ endpoint: worker.endpoint, key: worker.key, timers: { heartbeatMs: 150 } }));
    await new Promise((r) => setTimeout(r, 1500));
    expect(await s.contextDevice()).toBe(0);
    expect(s.lost).toBeUndefined();
  });

  it('fails a call in flight and every later one with a lost link when the worker dies mid-call, at once, not a hang', async () => {
    worker = await startWorker();
    const s = (session = await RemoteSession.connect({ endpoint: worker.endpoint, key: worker.key }));
    const mod = await s.loadModule('// long\n');
    const sleep = await s.function(mod, 'sleep');
    s.launch(sleep, 1, 1, [arg.u64(30_000_000)]); // 30 s on the fake GPU
    const waiting = s.synchronize();
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    worker.kill('SIGKILL');
    const err = await rejection(waiting);
    expect(err.code).toBe(ErrorCodes.remoteLinkLost);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect((await rejection(s.malloc(16))).code).toBe(ErrorCodes.remoteLinkLost);
    expect(() => s.launch(sleep, 1, 1, [arg.u64(1)])).toThrow(expect.objectContaining({ code: ErrorCodes.remoteLinkLost }) as Error);
    expect(s.lost?.code).toBe(ErrorCodes.remoteLinkLost);
  });

  it('fails a copy cut off halfway by the worker dying', async () => {
    worker = await startWorker();
    const s = (session = await RemoteSession.connect({ endpoint: worker.endpoint, key: worker.key }));
    const n = 256 * MiB;
    const p = await s.malloc(n);
    const copy = s.copyOut(p, n);
    setTimeout(() => worker?.kill('SIGKILL'), 5);
    const outcome = await copy.then(
      () => 'completed',
      (e: GsError) => e.code,
    );
    // Usually cut off (a lost link); on a fast machine the copy may finish first: never a hang or another error.
    expect([ErrorCodes.remoteLinkLost, 'completed']).toContain(outcome);
  });
});
