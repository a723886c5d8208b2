/**
 * Where the daemon listens by default and the CLI dials when nothing else is said: the one
 * place both sides learn it from. Pure over what it is given (environment, uid, a file test).
 *
 * Two kinds of daemon: a user's (per-user paths, XDG) and the machine's system service (root,
 * `/run/gpushare/gpushare.sock`, docs/operations.md). A variable that is set always wins; without
 * it, root gets the system path and any other user a per-user one.
 */

type Env = Readonly<Record<string, string | undefined>>;

/** The system service's socket (deploy/systemd/gpushare.service's RuntimeDirectory). */
export const SYSTEM_SOCKET = '/run/gpushare/gpushare.sock';

/** The API socket's default path: `$XDG_RUNTIME_DIR/gpushare/gpushare.sock`, else the system one for root, else a per-user directory under /tmp. */
export function defaultSocketPath(env: Env, uid: number): string {
  const runtime = env['XDG_RUNTIME_DIR'];
  if (runtime !== undefined && runtime.startsWith('/')) return `${runtime.replace(/\/+$/, '')}/gpushare/gpushare.sock`;
  return uid === 0 ? SYSTEM_SOCKET : `/tmp/gpushare-${uid}/gpushare.sock`;
}

/**
 * The socket the CLI dials when neither --host nor GPUSHARE_HOST names one: this user's
 * daemon's if it is there, else the system service's if that is there, else this user's (whose
 * absence the error then names).
 */
export function clientSocketPath(env: Env, uid: number, exists: (path: string) => boolean): string {
  const own = defaultSocketPath(env, uid);
  return !exists(own) && exists(SYSTEM_SOCKET) ? SYSTEM_SOCKET : own;
}
