/** The remote worker's first output line (native/remote/worker.c): how its port is read back. Kept free of zod: the CLI loads it at start-up. */

/** The port in the worker's first output line, "gpushare-remote-worker listening PORT" (native/remote/worker.c), or null before it. */
export function listeningPort(text: string): number | null {
  const m = /^gpushare-remote-worker listening (\d{1,5})$/m.exec(text);
  if (!m) return null;
  const port = Number(m[1]);
  return port > 0 && port <= 65535 ? port : null;
}
