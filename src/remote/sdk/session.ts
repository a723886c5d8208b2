/**
 * RemoteSession: a Node program's handle on a remote GPU session (docs/remote.md "TypeScript
 * SDK"), the same session the client libcuda.so.1 gives a C program: one worker, one context
 * (the device's primary context, retained when the session starts), everything the session made
 * freed by the worker when it closes or the link drops.
 *
 * Synchronous calls return promises that reject with a CudaError (GS_ERR_CUDA, the CUresult and
 * its name). Calls that return nothing (launch, copyInAsync, memsetAsync, record) return at once
 * and are sent batched; their errors come at the next synchronizing call (synchronize, a stream
 * or event synchronize or query, a synchronous copy), as CUDA reports asynchronous errors.
 */
import type { GsError } from '../../domain/index.js';
import { packArgs, type KernelArgs, type ParamLayout } from './args.js';
import { CudaError, badArgument } from './errors.js';
import { CudaResult } from './cuda-result.js';
import { DEFAULT_TIMERS, Link, type LinkTimers } from './link.js';
import { MAX_MODULE_BYTES, MAX_NAME, Op } from './ops.js';
import { openSocket, parseEndpoint, parsePin } from './transport.js';
import type { Field } from './codec.js';
import { openThroughDaemon, type DaemonOptions } from './daemon.js';

export interface Module {
  readonly kind: 'module';
  readonly id: bigint;
}
export interface KernelFunction {
  readonly kind: 'function';
  readonly id: bigint;
  readonly name: string;
  /** Each parameter's (offset, size), when the worker's driver can tell (cuFuncGetParamInfo, CUDA >= 12.4). */
  readonly layout: ParamLayout | undefined;
}
export interface Stream {
  readonly kind: 'stream';
  readonly id: bigint;
}
export interface Event {
  readonly kind: 'event';
  readonly id: bigint;
}

/** The default stream. */
export const DEFAULT_STREAM: Stream = Object.freeze({ kind: 'stream', id: 0n });

export interface DeviceInfo {
  readonly index: number;
  readonly name: string;
  /** "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", as nvidia-smi shows it. */
  readonly uuid: string;
  readonly totalMemory: bigint;
  readonly pciBusId: string;
  readonly computeCapability: readonly [number, number];
  readonly multiprocessors: number;
}

/** x, y, z of a grid or block; a number is [n, 1, 1]. */
export type Dim3 = number | readonly [number, number?, number?];

export interface ConnectOptions {
  /** The worker's HOST:PORT, as the daemon answered it. */
  readonly endpoint: string;
  /** The session key: 64 hex digits (or its 32 bytes). */
  readonly key: string | Uint8Array;
  /**
   * For a session with TLS: the SHA-256 of the worker's certificate, as the daemon answered it
   * (`tls.sha256`). The connection is then TLS 1.3 and refused unless the worker presents exactly
   * that certificate; without it, plaintext.
   */
  readonly tlsSha256?: string;
  /** The device whose primary context the session uses (default 0; a session holds one GPU). */
  readonly device?: number;
  /** For the connection and the handshake (default 10 s). */
  readonly connectTimeoutMs?: number;
  /** Heartbeat and dead-link timing (default: a PING after 2 s quiet, lost after 10 s unanswered). */
  readonly timers?: Partial<LinkTimers>;
}

const ATTR_MULTIPROCESSOR_COUNT = 16;
const ATTR_CC_MAJOR = 75;
const ATTR_CC_MINOR = 76;

function keyBytes(key: string | Uint8Array): Uint8Array {
  if (key instanceof Uint8Array) return key;
  if (!/^[0-9a-fA-F]{64}$/.test(key.trim())) throw badArgument('the session key must be 64 hex digits');
  return Buffer.from(key.trim(), 'hex');
}

function ptrOf(what: string, v: bigint): bigint {
  if (typeof v !== 'bigint' || v < 0n || v >= 2n ** 64n) throw badArgument(`${what}: a device pointer (a bigint from malloc), not ${typeof v === 'bigint' ? v.toString() : typeof v}`);
  return v;
}

function sizeOf(what: string, v: number | bigint): bigint {
  const n = typeof v === 'bigint' ? v : Number.isSafeInteger(v) ? BigInt(v) : -1n;
  if (n < 0n || n >= 2n ** 64n) throw badArgument(`${what}: a byte count (a non-negative integer), not ${String(v)}`);
  return n;
}

function dim3(what: string, d: Dim3): [number, number, number] {
  const [x, y = 1, z = 1] = typeof d === 'number' ? [d] : d;
  for (const v of [x, y, z]) if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 2 ** 32 - 1) throw badArgument(`${what}: each dimension an integer from 1 to 2^32-1, not ${String(v)}`);
  return [x as number, y, z];
}

function handleOf<K extends string>(kind: K, h: { readonly kind: string; readonly id: bigint } | undefined, what: string): bigint {
  if (h === undefined) return 0n;
  if (h.kind !== kind || typeof h.id !== 'bigint') throw badArgument(`${what}: a ${kind} of this session`);
  return h.id;
}

function uuidText(b: Uint8Array): string {
  const hex = Buffer.from(b).toString('hex');
  return `GPU-${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

function text(b: Field | undefined): string {
  return Buffer.from(b as Uint8Array).toString('utf8');
}

export class RemoteSession {
  private deviceCache: Promise<DeviceInfo[]> | undefined;

  private constructor(
    private readonly link: Link,
    private readonly ctx: bigint,
    /** The worker's CUDA driver version (12040 for 12.4). */
    readonly driverVersion: number,
    /** The device the session's context is on. */
    readonly device: number,
    /** The session's task on the daemon (sessions opened with open()). */
    readonly task: string | undefined,
  ) {}

  /**
   * Opens a session through the daemon (POST /v1/remote/sessions: a task of the caller's tenant
   * with the slice asked), waits for its worker, and connects: `{ daemon, token, memory, compute }`.
   * The session's task ends when the session closes (its worker exits with its client).
   */
  static async open(options: DaemonOptions & Omit<ConnectOptions, 'endpoint' | 'key' | 'tlsSha256'>): Promise<RemoteSession> {
    const opened = await openThroughDaemon(options);
    return RemoteSession.connect({ ...options, endpoint: opened.endpoint, key: opened.key, ...(opened.tlsSha256 ? { tlsSha256: opened.tlsSha256 } : {}) }, opened.task);
  }

  /** Connects to a session's worker (an endpoint and key the daemon gave), shakes hands, retains the device's primary context. */
  static async connect(options: ConnectOptions, task?: string): Promise<RemoteSession> {
    const endpoint = parseEndpoint(options.endpoint);
    const key = keyBytes(options.key);
    const device = options.device ?? 0;
    if (!Number.isInteger(device) || device < 0 || device > 2 ** 31 - 1) throw badArgument(`device: an index, not ${String(device)}`);
    const timeoutMs = options.connectTimeoutMs ?? 10_000;
    const pin = options.tlsSha256 === undefined ? undefined : parsePin(options.tlsSha256);
    const socket = await openSocket(endpoint, timeoutMs, pin);
    const { link, hello } = await Link.open(socket, key, { ...DEFAULT_TIMERS, ...options.timers }, timeoutMs);
    try {
      const [ctx] = await link.call(Op.PRIMARY_CTX_RETAIN, [device], 0n, 'cuDevicePrimaryCtxRetain');
      return new RemoteSession(link, ctx as bigint, hello.driverVersion, device, task);
    } catch (err) {
      await link.close();
      throw err;
    }
  }

  /** Why the session is gone (link lost, closed), or undefined while it is up. */
  get lost(): GsError | undefined {
    return this.link.lost;
  }

  private call(op: number, fields: readonly Field[], name: string): Promise<Field[]> {
    return this.link.call(op, fields, this.ctx, name);
  }

  /** The worker's devices (for a session, the one GPU of its slice); immutable, so asked once. */
  devices(): Promise<DeviceInfo[]> {
    this.deviceCache ??= this.askDevices();
    const asked = this.deviceCache;
    asked.catch(() => {
      if (this.deviceCache === asked) this.deviceCache = undefined; // asked again next time
    });
    return asked;
  }

  private async askDevices(): Promise<DeviceInfo[]> {
    const [count] = await this.call(Op.DEVICE_GET_COUNT, [], 'cuDeviceGetCount');
    const out: Promise<DeviceInfo>[] = [];
    for (let d = 0; d < (count as number); d++) out.push(this.askDevice(d));
    return Promise.all(out);
  }

  private async askDevice(d: number): Promise<DeviceInfo> {
    // Sent together, answered in order: one round trip's wait for all seven.
    const attr = (a: number): Promise<number> => this.call(Op.DEVICE_GET_ATTRIBUTE, [a, d], 'cuDeviceGetAttribute').then(([v]) => v as number);
    const [[name], [uuid], [total], [pci], major, minor, sms] = await Promise.all([
      this.call(Op.DEVICE_GET_NAME, [d], 'cuDeviceGetName'),
      this.call(Op.DEVICE_GET_UUID, [d], 'cuDeviceGetUuid'),
      this.call(Op.DEVICE_TOTAL_MEM, [d], 'cuDeviceTotalMem'),
      this.call(Op.DEVICE_GET_PCI_BUS_ID, [d], 'cuDeviceGetPCIBusId'),
      attr(ATTR_CC_MAJOR),
      attr(ATTR_CC_MINOR),
      attr(ATTR_MULTIPROCESSOR_COUNT),
    ]);
    return { index: d, name: text(name), uuid: uuidText(uuid as Uint8Array), totalMemory: total as bigint, pciBusId: text(pci), computeCapability: [major, minor], multiprocessors: sms };
  }

  /** One device attribute (a CUdevice_attribute number), asked each time. */
  async attribute(attribute: number, device = this.device): Promise<number> {
    const [v] = await this.call(Op.DEVICE_GET_ATTRIBUTE, [attribute, device], 'cuDeviceGetAttribute');
    return v as number;
  }

  /** The device of the session's context, asked of the worker (cuCtxGetDevice): the smallest synchronous round trip. */
  async contextDevice(): Promise<number> {
    const [d] = await this.call(Op.CTX_GET_DEVICE, [], 'cuCtxGetDevice');
    return d as number;
  }

  /** Free and total bytes as the session sees them (under libgpushare: its slice). */
  async memoryInfo(): Promise<{ free: bigint; total: bigint }> {
    const [free, total] = await this.call(Op.MEM_GET_INFO, [], 'cuMemGetInfo');
    return { free: free as bigint, total: total as bigint };
  }

  /** Allocates device memory: its address. */
  async malloc(bytes: number | bigint): Promise<bigint> {
    const [p] = await this.call(Op.MEM_ALLOC, [sizeOf('malloc', bytes)], 'cuMemAlloc');
    return p as bigint;
  }

  async free(ptr: bigint): Promise<void> {
    await this.call(Op.MEM_FREE, [ptrOf('free', ptr)], 'cuMemFree');
  }

  /** Host to device, synchronous: resolves when the bytes are on the device. `src` must not change until then. */
  async copyIn(dst: bigint, src: Uint8Array): Promise<void> {
    if (!(src instanceof Uint8Array)) throw badArgument('copyIn: the source is a Uint8Array (or Buffer)');
    await this.link.sendData(Op.MEMCPY_HTOD, [ptrOf('copyIn', dst), BigInt(src.length), 0n, 0], this.ctx, src, true, 'cuMemcpyHtoD');
  }

  /** Host to device on a stream, returning nothing: `src` must not change until the next synchronizing call returns. */
  copyInAsync(dst: bigint, src: Uint8Array, stream: Stream = DEFAULT_STREAM): void {
    if (!(src instanceof Uint8Array)) throw badArgument('copyInAsync: the source is a Uint8Array (or Buffer)');
    this.link.sendData(Op.MEMCPY_HTOD, [ptrOf('copyInAsync', dst), BigInt(src.length), handleOf('stream', stream, 'copyInAsync'), 1], this.ctx, src, false, 'cuMemcpyHtoDAsync');
  }

  /**
   * Device to host: `bytes` bytes into a new Buffer (or into `options.into`, exactly that long).
   * With a stream, after the stream's work so far (cuMemcpyDtoHAsync then a stream synchronize).
   */
  async copyOut(src: bigint, bytes: number, options: { into?: Uint8Array; stream?: Stream } = {}): Promise<Uint8Array> {
    const n = Number(sizeOf('copyOut', bytes));
    const into = options.into ?? Buffer.allocUnsafe(n);
    if (into.length !== n) throw badArgument(`copyOut: \`into\` holds ${into.length} bytes, ${n} asked`);
    const stream = handleOf('stream', options.stream, 'copyOut');
    await this.link.receiveData(Op.MEMCPY_DTOH, [ptrOf('copyOut', src), BigInt(n), stream, options.stream ? 1 : 0], this.ctx, into, 'cuMemcpyDtoH');
    return into;
  }

  /** Device to device, synchronous. */
  async copyDevice(dst: bigint, src: bigint, bytes: number | bigint): Promise<void> {
    await this.call(Op.MEMCPY_DTOD, [ptrOf('copyDevice', dst), ptrOf('copyDevice', src), sizeOf('copyDevice', bytes), 0n, 0], 'cuMemcpyDtoD');
  }

  /** Sets `bytes` bytes at `dst` to `value` (0-255), synchronous. */
  async memset(dst: bigint, value: number, bytes: number | bigint): Promise<void> {
    await this.call(Op.MEMSET_D8, [ptrOf('memset', dst), byteValue(value), sizeOf('memset', bytes), 0n, 0], 'cuMemsetD8');
  }

  /** memset on a stream, returning nothing (its error comes at the next synchronizing call). */
  memsetAsync(dst: bigint, value: number, bytes: number | bigint, stream: Stream = DEFAULT_STREAM): void {
    this.link.post(Op.MEMSET_D8, [ptrOf('memsetAsync', dst), byteValue(value), sizeOf('memsetAsync', bytes), handleOf('stream', stream, 'memsetAsync'), 1], this.ctx);
  }

  /** Loads a module: PTX text (a string, or its bytes) or a cubin/fatbin image. */
  async loadModule(image: Uint8Array | string): Promise<Module> {
    const bytes = typeof image === 'string' ? Buffer.from(`${image}\0`, 'utf8') : image;
    if (!(bytes instanceof Uint8Array) || bytes.length === 0 || bytes.length > MAX_MODULE_BYTES) throw badArgument(`loadModule: an image of 1 byte to 1 GiB, not ${bytes instanceof Uint8Array ? `${bytes.length} bytes` : typeof image}`);
    const [id] = (await this.link.sendData(Op.MODULE_LOAD_DATA, [BigInt(bytes.length)], this.ctx, bytes, true, 'cuModuleLoadData')) as Field[];
    return Object.freeze({ kind: 'module', id: id as bigint });
  }

  async unloadModule(module: Module): Promise<void> {
    await this.call(Op.MODULE_UNLOAD, [handleOf('module', module, 'unloadModule')], 'cuModuleUnload');
  }

  /** A kernel of a loaded module, with its parameter layout when the worker's driver can tell it. */
  async function(module: Module, name: string): Promise<KernelFunction> {
    const bytes = Buffer.from(name, 'utf8');
    if (bytes.length === 0 || bytes.length > MAX_NAME || bytes.includes(0)) throw badArgument(`function: a name of 1 to ${MAX_NAME} bytes without NUL`);
    const [id, hasLayout, wire] = await this.call(Op.MODULE_GET_FUNCTION, [handleOf('module', module, 'function'), bytes], 'cuModuleGetFunction');
    const raw = wire as Uint8Array;
    if (raw.length % 8 !== 0) throw new CudaError('cuModuleGetFunction', 999, `a parameter layout of ${raw.length} bytes`);
    const v = new DataView(raw.buffer, raw.byteOffset, raw.length);
    const layout: [number, number][] = [];
    for (let i = 0; i < raw.length; i += 8) layout.push([v.getUint32(i, true), v.getUint32(i + 4, true)]);
    return Object.freeze({ kind: 'function', id: id as bigint, name, layout: hasLayout ? layout : undefined });
  }

  /**
   * Launches a kernel, returning nothing: sent with the next synchronous call (or when 64 KiB of
   * such calls have gathered); an error it meets comes at the next synchronizing call. Throws at
   * once only for bad arguments and a lost link.
   */
  launch(fn: KernelFunction, grid: Dim3, block: Dim3, args: KernelArgs = [], options: { stream?: Stream; sharedMemBytes?: number } = {}): void {
    if (fn?.kind !== 'function') throw badArgument('launch: a function of this session (from session.function)');
    const [gx, gy, gz] = dim3('launch grid', grid);
    const [bx, by, bz] = dim3('launch block', block);
    const shared = options.sharedMemBytes ?? 0;
    if (!Number.isInteger(shared) || shared < 0 || shared > 2 ** 32 - 1) throw badArgument(`launch: sharedMemBytes an integer from 0, not ${String(shared)}`);
    const params = packArgs(args, fn.layout, fn.name);
    this.link.post(Op.LAUNCH_KERNEL, [fn.id, gx, gy, gz, bx, by, bz, shared, handleOf('stream', options.stream, 'launch'), params], this.ctx);
  }

  async createStream(flags = 0): Promise<Stream> {
    const [id] = await this.call(Op.STREAM_CREATE, [flags], 'cuStreamCreate');
    return Object.freeze({ kind: 'stream', id: id as bigint });
  }

  async destroyStream(stream: Stream): Promise<void> {
    await this.call(Op.STREAM_DESTROY, [handleOf('stream', stream, 'destroyStream')], 'cuStreamDestroy');
  }

  /** Waits for the stream's work (a synchronizing call: reports an earlier batched call's error). */
  async streamSynchronize(stream: Stream = DEFAULT_STREAM): Promise<void> {
    await this.call(Op.STREAM_SYNCHRONIZE, [handleOf('stream', stream, 'streamSynchronize')], 'cuStreamSynchronize');
  }

  /** Whether the stream's work is done (CUDA_ERROR_NOT_READY: false). */
  streamQuery(stream: Stream = DEFAULT_STREAM): Promise<boolean> {
    return this.query(this.call(Op.STREAM_QUERY, [handleOf('stream', stream, 'streamQuery')], 'cuStreamQuery'));
  }

  async createEvent(flags = 0): Promise<Event> {
    const [id] = await this.call(Op.EVENT_CREATE, [flags], 'cuEventCreate');
    return Object.freeze({ kind: 'event', id: id as bigint });
  }

  async destroyEvent(event: Event): Promise<void> {
    await this.call(Op.EVENT_DESTROY, [handleOf('event', event, 'destroyEvent')], 'cuEventDestroy');
  }

  /** Records the event on the stream, returning nothing (batched like a launch). */
  record(event: Event, stream: Stream = DEFAULT_STREAM): void {
    if (event?.kind !== 'event') throw badArgument('record: an event of this session');
    this.link.post(Op.EVENT_RECORD, [event.id, handleOf('stream', stream, 'record')], this.ctx);
  }

  async eventSynchronize(event: Event): Promise<void> {
    if (event?.kind !== 'event') throw badArgument('eventSynchronize: an event of this session');
    await this.call(Op.EVENT_SYNCHRONIZE, [event.id], 'cuEventSynchronize');
  }

  eventQuery(event: Event): Promise<boolean> {
    if (event?.kind !== 'event') return Promise.reject(badArgument('eventQuery: an event of this session'));
    return this.query(this.call(Op.EVENT_QUERY, [event.id], 'cuEventQuery'));
  }

  /** Milliseconds between two recorded events. */
  async elapsedMs(start: Event, end: Event): Promise<number> {
    const [bits] = await this.call(Op.EVENT_ELAPSED_TIME, [handleOf('event', start, 'elapsedMs'), handleOf('event', end, 'elapsedMs')], 'cuEventElapsedTime');
    const v = new DataView(new ArrayBuffer(4));
    v.setUint32(0, bits as number, true);
    return v.getFloat32(0, true);
  }

  /** Waits for all the session's work (cuCtxSynchronize): reports an earlier batched call's error, once. */
  async synchronize(): Promise<void> {
    await this.call(Op.CTX_SYNCHRONIZE, [], 'cuCtxSynchronize');
  }

  /** Sends the calls that return nothing gathered so far without waiting for anything. */
  flush(): void {
    this.link.flush();
  }

  /** Ends the session: calls in flight get their answers, then the worker frees everything and exits. */
  close(): Promise<void> {
    return this.link.close();
  }

  private async query(asked: Promise<Field[]>): Promise<boolean> {
    try {
      await asked;
      return true;
    } catch (err) {
      if (err instanceof CudaError && err.result === CudaResult.notReady) return false;
      throw err;
    }
  }
}

function byteValue(v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 255) throw badArgument(`memset: a byte value 0-255, not ${String(v)}`);
  return v;
}
