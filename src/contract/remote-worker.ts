/** The remote worker's first output line (native/remote/worker.c): how its port and its TLS pin are read back. Kept free of zod: the CLI loads it at start-up. */

/** What the worker's first line says: its port and, for a TLS session, its certificate's SHA-256 (64 lowercase hex digits). */
export interface WorkerListening {
  readonly port: number;
  readonly tlsSha256: string | null;
}

/** The worker's first output line, "gpushare-remote-worker listening PORT[ tls-sha256 FP]", or null before it. */
export function workerListening(text: string): WorkerListening | null {
  const m = /^gpushare-remote-worker listening (\d{1,5})(?: tls-sha256 ([0-9a-f]{64}))?$/m.exec(text);
  if (!m) return null;
  const port = Number(m[1]);
  return port > 0 && port <= 65535 ? { port, tlsSha256: m[2] ?? null } : null;
}

/** The port in the worker's first output line, or null before it. */
export function listeningPort(text: string): number | null {
  return workerListening(text)?.port ?? null;
}
