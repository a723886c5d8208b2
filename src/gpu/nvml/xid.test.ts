import { describe, expect, it } from 'vitest';
import { ErrorCodes, GsError } from '../../domain/index.js';
import { NVML } from './codes.js';
import { XidWatch } from './xid.js';

/** An NVML event API in memory: devices by handle, XIDs queued per device, return codes to force. */
function fakeNvml(options: { create?: number; supported?: Record<string, bigint>; register?: Record<string, number>; wait?: number } = {}) {
  const queue: { device: string; xid: number }[] = [];
  const registered = new Set<string>();
  const calls: string[] = [];
  const nvml = {
    call(name: string, ...args: unknown[]): number {
      calls.push(name);
      switch (name) {
        case 'nvmlEventSetCreate':
          (args[0] as unknown[])[0] = { set: 1 };
          return options.create ?? NVML.SUCCESS;
        case 'nvmlDeviceGetSupportedEventTypes':
          (args[1] as unknown[])[0] = options.supported?.[args[0] as string] ?? 0xfffn;
          return NVML.SUCCESS;
        case 'nvmlDeviceRegisterEvents': {
          const rc = options.register?.[args[0] as string] ?? NVML.SUCCESS;
          if (rc === NVML.SUCCESS) registered.add(args[0] as string);
          return rc;
        }
        case 'nvmlEventSetWait_v2': {
          if (options.wait !== undefined) return options.wait;
          const next = queue.shift();
          if (next === undefined) return NVML.TIMEOUT;
          Object.assign(args[1] as object, { device: next.device, eventType: 8n, eventData: BigInt(next.xid) });
          return NVML.SUCCESS;
        }
        case 'nvmlDeviceGetUUID': {
          const buf = args[1] as Buffer;
          buf.fill(0);
          buf.write(`GPU-${args[0] as string}`);
          return NVML.SUCCESS;
        }
        case 'nvmlEventSetFree':
          return NVML.SUCCESS;
        default:
          return NVML.FUNCTION_NOT_FOUND;
      }
    },
  };
  const check = (rc: number, fn: string): true => {
    throw new GsError(ErrorCodes.nvmlCall, `${fn} failed: ${rc}`);
  };
  return { nvml, queue, registered, calls, watch: new XidWatch(nvml as never, check) };
}

const devices = [{ handle: 'a', uuid: 'GPU-a' }, { handle: 'b', uuid: 'GPU-b' }];

describe('XidWatch', () => {
  it('counts critical XIDs per GPU from the time it registers them, keeping the last code', () => {
    const f = fakeNvml();
    f.watch.poll(devices);
    expect(f.watch.of('GPU-a')).toEqual({ xidErrors: 0, lastXid: null });
    f.queue.push({ device: 'a', xid: 79 }, { device: 'a', xid: 48 }, { device: 'b', xid: 13 });
    f.watch.poll(devices);
    expect(f.watch.of('GPU-a')).toEqual({ xidErrors: 2, lastXid: 48 });
    expect(f.watch.of('GPU-b')).toEqual({ xidErrors: 1, lastXid: 13 });
    // Registered once, not at every reading.
    expect(f.calls.filter((c) => c === 'nvmlDeviceRegisterEvents')).toHaveLength(2);
  });

  it('leaves a GPU that cannot deliver XID events null, never 0, and does not ask again', () => {
    const f = fakeNvml({ supported: { b: 0n }, register: { a: NVML.NOT_SUPPORTED } });
    f.watch.poll(devices);
    f.watch.poll(devices);
    expect(f.watch.of('GPU-a')).toEqual({ xidErrors: null, lastXid: null });
    expect(f.watch.of('GPU-b')).toEqual({ xidErrors: null, lastXid: null });
    expect(f.calls.filter((c) => c === 'nvmlDeviceGetSupportedEventTypes')).toHaveLength(2);
  });

  it('watches nothing where the driver has no event API, asking once', () => {
    const f = fakeNvml({ create: NVML.FUNCTION_NOT_FOUND });
    f.watch.poll(devices);
    f.watch.poll(devices);
    expect(f.watch.of('GPU-a')).toEqual({ xidErrors: null, lastXid: null });
    expect(f.calls.filter((c) => c === 'nvmlEventSetCreate')).toHaveLength(1);
  });

  it('drains at most a bounded number of events per reading (an XID storm must not stall a sample)', () => {
    const f = fakeNvml();
    f.watch.poll(devices);
    for (let i = 0; i < 300; i++) f.queue.push({ device: 'a', xid: 31 });
    f.watch.poll(devices);
    expect(f.watch.of('GPU-a').xidErrors).toBe(256);
    f.watch.poll(devices);
    expect(f.watch.of('GPU-a').xidErrors).toBe(300);
  });

  it('fails on an unexpected return code, naming the function', () => {
    const f = fakeNvml({ wait: NVML.UNKNOWN });
    expect(() => f.watch.poll(devices)).toThrow(/nvmlEventSetWait_v2 failed: 999/);
  });
});
