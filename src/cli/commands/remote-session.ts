/**
 * A remote GPU session as the CLI opens it (docs/remote.md): pure pieces of `gpushare remote
 * open` and `gpushare run --remote`. The daemon opens the session (src/remote/sessions.ts);
 * the CLI points the local program at its endpoint, the key in the program's environment.
 */

export { listeningPort } from '../../contract/remote-worker.js';

/**
 * The host the client reaches the worker at: the daemon's own host for a TCP daemon, the
 * loopback address for one on a Unix socket (which is on this machine).
 */
export function dataHost(daemon: { readonly kind: 'unix' } | { readonly kind: 'tcp'; readonly url: URL }): string {
  if (daemon.kind === 'unix') return '127.0.0.1';
  const host = daemon.url.hostname;
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/**
 * The local program's environment: the client libcuda.so.1's directory first on the library
 * path, so a program (or a runtime that dlopens libcuda.so.1) finds it; the endpoint and key;
 * for a TLS session the worker's certificate pin (a plaintext session drops any pin inherited).
 */
export function clientEnv(base: Readonly<Record<string, string | undefined>>, endpoint: string, key: string, clientLibDir: string, tlsSha256: string | null = null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined) out[k] = v;
  const path = base['LD_LIBRARY_PATH'];
  out['LD_LIBRARY_PATH'] = path ? `${clientLibDir}:${path}` : clientLibDir;
  out['GPUSHARE_REMOTE'] = endpoint;
  out['GPUSHARE_REMOTE_KEY'] = key;
  if (tlsSha256 !== null) out['GPUSHARE_REMOTE_TLS_SHA256'] = tlsSha256;
  else delete out['GPUSHARE_REMOTE_TLS_SHA256'];
  return out;
}
