/**
 * Where the daemon listens by default and the CLI dials when nothing else is said: the one
 * place both sides learn it from. Pure over what it is given (environment, uid).
 */

type Env = Readonly<Record<string, string | undefined>>;

/** The API socket's default path: `$XDG_RUNTIME_DIR/gpushare/gpushare.sock`, else a per-user directory under /tmp. */
export function defaultSocketPath(env: Env, uid: number): string {
  const runtime = env['XDG_RUNTIME_DIR'];
  const dir = runtime !== undefined && runtime.startsWith('/') ? `${runtime.replace(/\/+$/, '')}/gpushare` : `/tmp/gpushare-${uid}`;
  return `${dir}/gpushare.sock`;
}
