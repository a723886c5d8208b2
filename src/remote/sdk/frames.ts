/**
 * Frames out of a byte stream (docs/remote.md "Framing"): the bytes of a socket, in chunks of any
 * size, reassembled into whole frames. Pure: no socket here, the link pushes what it reads.
 * A DATA frame's payload goes straight where `sinkFor` says (a copy's destination), without an
 * intermediate buffer; any other payload is gathered into a buffer of its own.
 */
import { decodeHeader, type Header } from './codec.js';
import { HEADER_BYTES, Op } from './ops.js';

export interface Frame {
  readonly header: Header;
  /** The payload: owned by the frame (or, for a DATA frame with a sink, the sink's bytes). */
  readonly payload: Uint8Array;
}

/**
 * `sinkFor(header)`: where a DATA frame's `header.length` bytes go (a view of exactly that many
 * bytes), or undefined to gather them like any payload. It may throw the protocol error (a DATA
 * frame nobody asked for, or longer than what is left of the copy).
 */
export class FrameReader {
  private readonly headerBytes = Buffer.alloc(HEADER_BYTES);
  private headerFill = 0;
  private header: Header | undefined;
  private payload: Uint8Array = new Uint8Array(0);
  private payloadFill = 0;

  constructor(
    private readonly onFrame: (frame: Frame) => void,
    private readonly sinkFor: (header: Header) => Uint8Array | undefined,
  ) {}

  /** Takes the next bytes of the stream; throws the protocol error on a bad header (the stream is then unusable). */
  push(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.header === undefined) {
        const take = Math.min(HEADER_BYTES - this.headerFill, chunk.length - at);
        this.headerBytes.set(chunk.subarray(at, at + take), this.headerFill);
        this.headerFill += take;
        at += take;
        if (this.headerFill < HEADER_BYTES) return;
        this.headerFill = 0;
        const h = decodeHeader(this.headerBytes);
        const sink = h.op === Op.DATA ? this.sinkFor(h) : undefined;
        this.payload = sink ?? Buffer.allocUnsafe(h.length);
        this.payloadFill = 0;
        this.header = h;
        if (h.length === 0) this.finish();
        continue;
      }
      const take = Math.min(this.payload.length - this.payloadFill, chunk.length - at);
      this.payload.set(chunk.subarray(at, at + take), this.payloadFill);
      this.payloadFill += take;
      at += take;
      if (this.payloadFill === this.payload.length) this.finish();
    }
  }

  private finish(): void {
    const frame: Frame = { header: this.header as Header, payload: this.payload };
    this.header = undefined;
    this.payload = new Uint8Array(0);
    this.onFrame(frame);
  }
}
