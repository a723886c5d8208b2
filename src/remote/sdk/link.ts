/**
 * One session's connection to its worker (docs/remote.md): the handshake, synchronous calls
 * (one reply each, answered in the order asked), calls that return nothing (buffered and sent
 * with the next synchronous call or when 64 KiB have gathered: one write for many, as the C
 * client does), chunked copies each way, the heartbeat, and the one-way trip to "lost".
 *
 * Every write happens at once, in the caller's order (Node queues what the kernel does not take
 * yet), so frames never interleave and no write waits on another. A copy's DATA frames are views
 * of the caller's buffer: it must not change until the copy's promise settles (for a copy sent
 * without a reply, until the next synchronizing call returns), as CUDA asks of async copies.
 */
import type { Socket } from 'node:net';
import type { GsError } from '../../domain/index.js';
import { decodePayload, encodeHeader, encodePayload, payloadBytes, replySchema, type Field, type Header } from './codec.js';
import { CudaError, badArgument, linkLost, protocolError } from './errors.js';
import { FrameReader, type Frame } from './frames.js';
import { CHUNK_BYTES, FLAG_MORE, FLAG_NO_REPLY, FLAG_REPLY, HEADER_BYTES, KEY_BYTES, MAGIC, MAX_PAYLOAD, Op, VERSION, opInfo } from './ops.js';
import { CudaResult } from './cuda-result.js';

/** What calls that return nothing gather before they are written (the C client's buffer). */
export const BATCH_BYTES = 64 * 1024;
/** A batch up to this size is copied out when written (cheaper than a new 64 KiB buffer). */
const SMALL_WRITE = 4096;

export interface LinkTimers {
  /** A PING goes out after this long without traffic and nothing awaited (the C client: 2 s). */
  readonly heartbeatMs: number;
  /** A PING unanswered this long: the link is lost (the C client's TCP_USER_TIMEOUT: 10 s). */
  readonly pingTimeoutMs: number;
}

export const DEFAULT_TIMERS: LinkTimers = { heartbeatMs: 2_000, pingTimeoutMs: 10_000 };

/** The worker's HELLO answer. */
export interface Hello {
  readonly version: number;
  readonly maxChunk: number;
  readonly driverVersion: number;
}

interface Pending {
  readonly op: number;
  readonly id: number;
  readonly call: string;
  readonly resolve: (fields: Field[]) => void;
  readonly reject: (err: GsError) => void;
  /** A device-to-host copy: where its DATA frames go, and how much came. */
  readonly sink?: { readonly into: Uint8Array; filled: number };
}

function opName(op: number): string {
  return opInfo(op)?.name ?? String(op);
}

export class Link {
  private readonly pending: Pending[] = [];
  private batch = Buffer.allocUnsafe(BATCH_BYTES);
  private batchLen = 0;
  private nextId = 1;
  private failure: GsError | undefined;
  /** Set by close(): new calls are refused while the answers to earlier ones still come. */
  private closing: GsError | undefined;
  private lastIo = Date.now();
  private heartbeat: NodeJS.Timeout | undefined;
  private chunkBytes = CHUNK_BYTES;
  private readonly reader: FrameReader;
  private readonly closed: Promise<void>;

  private constructor(
    private readonly socket: Socket,
    private readonly timers: LinkTimers,
  ) {
    this.reader = new FrameReader(
      (frame) => this.onFrame(frame),
      (h) => this.sinkFor(h),
    );
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(linkLost(err.message, err)));
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.once('close', () => this.fail(this.closing ?? linkLost('the worker closed the connection')));
  }

  /**
   * Shakes hands on a connected socket (HELLO with the key): the link, or the error that says
   * why not (CUDA_ERROR_NOT_PERMITTED: the key; CUDA_ERROR_NOT_SUPPORTED: no common version).
   */
  static async open(socket: Socket, key: Uint8Array, timers: LinkTimers, timeoutMs: number): Promise<{ link: Link; hello: Hello }> {
    if (key.length !== KEY_BYTES) throw badArgument(`the session key must be ${KEY_BYTES} bytes (64 hex digits), not ${key.length}`);
    const link = new Link(socket, timers);
    const timer = setTimeout(() => link.fail(linkLost(`no answer to the handshake within ${timeoutMs} ms`)), timeoutMs);
    try {
      const [version, maxChunk, driverVersion] = (await link.call(Op.HELLO, [MAGIC, VERSION, VERSION, key], 0n, 'HELLO')) as number[];
      if (version !== VERSION || !maxChunk) throw protocolError(`the handshake answered version ${String(version)}, chunk ${String(maxChunk)}`);
      link.chunkBytes = Math.min(maxChunk, CHUNK_BYTES);
      link.heartbeat = setInterval(() => link.beat(), Math.max(10, Math.floor(timers.heartbeatMs / 2)));
      link.heartbeat.unref();
      return { link, hello: { version, maxChunk, driverVersion: driverVersion as number } };
    } catch (err) {
      const why =
        err instanceof CudaError && err.result === CudaResult.notPermitted
          ? new CudaError('HELLO', err.result, 'the worker refused the session key')
          : err instanceof CudaError && err.result === CudaResult.notSupported
            ? new CudaError('HELLO', err.result, `the worker speaks no version this SDK does (${VERSION})`)
            : (err as GsError);
      link.fail(why);
      throw why;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Why the link is gone, or undefined while it is up. */
  get lost(): GsError | undefined {
    return this.failure ?? this.closing;
  }

  /** A synchronous call: resolves with the reply's fields, rejects with its CUresult as a CudaError. */
  call(op: number, fields: readonly Field[], ctx: bigint, call: string): Promise<Field[]> {
    return new Promise((resolve, reject) => {
      const gone = this.lost;
      if (gone) return reject(gone);
      const id = this.put(op, 0, fields, ctx);
      this.pending.push({ op, id, call, resolve, reject });
      this.flush();
    });
  }

  /** A call that returns nothing: buffered; its error comes at the next synchronizing call. Throws only when the link is gone. */
  post(op: number, fields: readonly Field[], ctx: bigint): void {
    const gone = this.lost;
    if (gone) throw gone;
    this.put(op, FLAG_NO_REPLY, fields, ctx);
    if (this.batchLen > BATCH_BYTES - 512) this.flush();
  }

  /**
   * A request followed by `data` as DATA frames (host-to-device copies, module images). With
   * `reply` a promise of the reply; without, sent with NO_REPLY (its error comes later).
   */
  sendData(op: number, fields: readonly Field[], ctx: bigint, data: Uint8Array, reply: boolean, call: string): Promise<Field[]> | undefined {
    const gone = this.lost;
    if (gone) {
      if (!reply) throw gone;
      return Promise.reject(gone);
    }
    const id = this.put(op, reply ? 0 : FLAG_NO_REPLY, fields, ctx);
    const promise = reply ? new Promise<Field[]>((resolve, reject) => this.pending.push({ op, id, call, resolve, reject })) : undefined;
    this.flush();
    this.socket.cork();
    for (let off = 0; off < data.length; ) {
      const n = Math.min(this.chunkBytes, data.length - off);
      const h = Buffer.allocUnsafe(HEADER_BYTES);
      encodeHeader({ length: n, op: Op.DATA, flags: off + n < data.length ? FLAG_MORE : 0, id: 0, status: 0, ctx: 0n }, h);
      this.socket.write(h);
      this.socket.write(data.subarray(off, off + n));
      off += n;
    }
    this.socket.uncork();
    this.lastIo = Date.now();
    return promise;
  }

  /** A device-to-host copy: its DATA frames land in `into` (exactly its length), then the status. */
  receiveData(op: number, fields: readonly Field[], ctx: bigint, into: Uint8Array, call: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const gone = this.lost;
      if (gone) return reject(gone);
      const id = this.put(op, 0, fields, ctx);
      this.pending.push({ op, id, call, resolve: () => resolve(), reject, sink: { into, filled: 0 } });
      this.flush();
    });
  }

  /** Writes what calls that return nothing have gathered. */
  flush(): void {
    if (this.batchLen === 0 || this.failure) return;
    // The socket may hold what it is given until the kernel takes it: a small batch (a lone
    // synchronous call, most often) is copied out and the buffer kept; a large one is handed
    // over whole and a new buffer taken.
    let out: Buffer;
    if (this.batchLen <= SMALL_WRITE) {
      out = Buffer.from(this.batch.subarray(0, this.batchLen));
    } else {
      out = this.batch.subarray(0, this.batchLen);
      this.batch = Buffer.allocUnsafe(BATCH_BYTES);
    }
    this.batchLen = 0;
    this.socket.write(out);
    this.lastIo = Date.now();
  }

  /**
   * Ends the session: what is buffered goes out, calls in flight get their answers, then the
   * connection closes and the worker frees everything the session made.
   */
  async close(): Promise<void> {
    if (!this.lost) {
      this.flush();
      this.closing = linkLost('the session was closed');
      this.socket.end();
      const until = setTimeout(() => this.socket.destroy(), this.timers.pingTimeoutMs);
      await this.closed;
      clearTimeout(until);
    }
    this.fail(this.closing ?? linkLost('the session was closed'));
  }

  /** Encodes one request frame into the batch (flushing first if it does not fit); its id. */
  private put(op: number, flags: number, fields: readonly Field[], ctx: bigint): number {
    const schema = opInfo(op)?.request;
    if (typeof schema !== 'string') throw new TypeError(`op ${op} has no request schema`);
    const length = payloadBytes(schema, fields);
    if (length > MAX_PAYLOAD) throw badArgument(`${opName(op)}: a request of ${length} bytes (at most ${MAX_PAYLOAD})`);
    if (HEADER_BYTES + length > BATCH_BYTES - this.batchLen) {
      this.flush();
      if (HEADER_BYTES + length > BATCH_BYTES) this.batch = Buffer.allocUnsafe(HEADER_BYTES + length);
    }
    const id = this.nextId;
    this.nextId = (this.nextId + 1) >>> 0 || 1;
    encodeHeader({ length, op, flags, id, status: 0, ctx }, this.batch, this.batchLen);
    this.batchLen = encodePayload(schema, fields, this.batch, this.batchLen + HEADER_BYTES);
    return id;
  }

  private onData(chunk: Buffer): void {
    this.lastIo = Date.now();
    try {
      this.reader.push(chunk);
    } catch (err) {
      this.fail((err as GsError).code ? (err as GsError) : protocolError(String(err)));
    }
  }

  private sinkFor(h: Header): Uint8Array {
    const p = this.pending[0];
    if (!p?.sink) throw protocolError('copy data nobody asked for');
    if (h.length > p.sink.into.length - p.sink.filled) throw protocolError(`more copy data than the ${p.sink.into.length} bytes asked for`);
    return p.sink.into.subarray(p.sink.filled, p.sink.filled + h.length);
  }

  /** One whole frame from the worker: the answer to the oldest call awaiting one. Throws the protocol error. */
  private onFrame(frame: Frame): void {
    const h = frame.header;
    if (!(h.flags & FLAG_REPLY)) throw protocolError(`a ${opName(h.op)} frame without the reply flag`);
    const p = this.pending[0];
    if (!p) throw protocolError(`an answer (${opName(h.op)}) to nothing asked`);
    if (h.op === Op.DATA) {
      (p.sink as { filled: number }).filled += h.length;
      return;
    }
    if (h.op !== p.op || h.id !== p.id) throw protocolError(`an answer to ${opName(h.op)} #${h.id} while ${opName(p.op)} #${p.id} awaits one`);
    if (h.status !== CudaResult.success) {
      if (h.length !== 0) throw protocolError(`an error answer to ${opName(h.op)} with ${h.length} payload bytes`);
      this.pending.shift();
      p.reject(new CudaError(p.call, h.status));
      return;
    }
    const fields = decodePayload(replySchema(h.op), frame.payload, `the answer to ${opName(h.op)}`);
    if (p.sink && p.sink.filled !== p.sink.into.length) throw protocolError(`a copy answered after ${p.sink.filled} of ${p.sink.into.length} bytes`);
    this.pending.shift();
    p.resolve(fields);
  }

  /** The heartbeat: a PING when the link has been quiet and nothing awaits an answer (an answer awaited is its own heartbeat). */
  private beat(): void {
    if (this.lost || this.pending.length > 0 || Date.now() - this.lastIo < this.timers.heartbeatMs) return;
    const timer = setTimeout(() => this.fail(linkLost(`no answer to a heartbeat within ${this.timers.pingTimeoutMs} ms`)), this.timers.pingTimeoutMs);
    this.call(Op.PING, [], 0n, 'PING').then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    );
  }

  /** The link is gone for good: every call awaiting an answer and every later one gets `why`. */
  private fail(why: GsError): void {
    if (this.failure) return;
    this.failure = why;
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const p of this.pending.splice(0)) p.reject(why);
    this.socket.destroy();
  }
}
