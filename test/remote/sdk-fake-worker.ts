/**
 * A fake session worker for the SDK's tests, in this process: it shakes hands as the real one
 * does (HELLO, then PRIMARY_CTX_RETAIN), answers PING, and hands every other request to the
 * test's `answer`, which writes what it likes on the socket (or nothing). Over TLS when given a
 * certificate (docs/remote.md "TLS"), as a worker started with --tls.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { encodeHeader, encodePayload } from '../../src/remote/sdk/codec.js';
import { FrameReader } from '../../src/remote/sdk/frames.js';
import { FLAG_REPLY, HEADER_BYTES, Op } from '../../src/remote/sdk/ops.js';
import { RemoteSession } from '../../src/remote/sdk/index.js';

export const KEY = 'cd'.repeat(32);

/** A reply frame: `fields` by `schema` (no payload when `status` is an error). */
export function reply(op: number, id: number, schema: string, fields: (number | bigint)[], status = 0): Buffer {
  const body = Buffer.alloc(64);
  const n = status === 0 ? encodePayload(schema, fields, body, 0) : 0;
  const b = Buffer.alloc(HEADER_BYTES + n);
  encodeHeader({ length: n, op, flags: FLAG_REPLY, id, status, ctx: 0n }, b);
  body.copy(b, HEADER_BYTES, 0, n);
  return b;
}

export class FakeWorker {
  answer: (socket: Socket, op: number, id: number) => void = () => undefined;
  /** false: PINGs go unanswered (a worker that stopped answering). */
  answersPing = true;
  /** Bytes received after the transport's own handshake (TLS records excluded), all connections. */
  received = 0;
  port = 0;
  private server: Server | undefined;

  constructor(private readonly tls?: { readonly cert: string; readonly key: string }) {}

  async start(): Promise<void> {
    const serve = (socket: Socket): void => {
      socket.on('error', () => undefined);
      const reader = new FrameReader(
        ({ header: h }) => {
          if (h.op === Op.HELLO) socket.write(reply(Op.HELLO, h.id, 'uuu', [1, 2 ** 20, 12040]));
          else if (h.op === Op.PRIMARY_CTX_RETAIN) socket.write(reply(h.op, h.id, 'q', [0x0100000000000001n]));
          else if (h.op === Op.PING) {
            if (this.answersPing) socket.write(reply(Op.PING, h.id, '', []));
          }
          else this.answer(socket, h.op, h.id);
        },
        () => undefined,
      );
      socket.on('data', (d: Buffer) => {
        this.received += d.length;
        try {
          reader.push(d);
        } catch {
          socket.destroy();
        }
      });
    };
    this.server = this.tls ? createTlsServer({ ...this.tls, minVersion: 'TLSv1.3' }, serve) : createServer(serve);
    this.server.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as { port: number }).port;
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server?.close(() => r()));
  }

  connect(options: { timers?: { heartbeatMs?: number; pingTimeoutMs?: number }; tlsSha256?: string } = {}): Promise<RemoteSession> {
    return RemoteSession.connect({ endpoint: `127.0.0.1:${this.port}`, key: KEY, ...options });
  }
}
