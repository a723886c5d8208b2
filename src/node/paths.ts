import { mkdirSync, chmodSync, lstatSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { defaultSocketPath, SYSTEM_SOCKET } from '../contract/paths.js';
import { ErrorCodes, GsError } from '../domain/index.js';

/** Where gpushare keeps things by default, per the XDG base directory spec, or the system's. */
export interface DefaultPaths {
  readonly configDir: string;
  readonly stateDir: string;
  /** The API socket the daemon listens on and the CLI dials when nothing else is said. */
  readonly socket: string;
}

type Env = Readonly<Record<string, string | undefined>>;

/** A machine service's paths (deploy/systemd/gpushare.service makes these directories). */
export const SYSTEM_PATHS: DefaultPaths = {
  configDir: '/etc/gpushare',
  stateDir: '/var/lib/gpushare',
  socket: SYSTEM_SOCKET,
};

/**
 * The defaults; pure over `env`, the home directory and the uid. `system` (serve --system) takes
 * the system paths whatever the environment and the uid say (a service under its own user). Otherwise each XDG variable that is set (an
 * absolute path) wins; for one that is not, root (a system service) and a process without HOME
 * get the system path, anyone else the XDG fallback under their home.
 */
export function defaultPaths(env: Env = process.env, home: string | undefined = env['HOME'], uid = userInfo().uid, system = false): DefaultPaths {
  if (system) return SYSTEM_PATHS;
  const machine = uid === 0 || home === undefined || home === '';
  const xdg = (name: string, fallback: string, systemPath: string): string => {
    const v = env[name];
    // The spec says relative paths are invalid and must be ignored.
    if (v !== undefined && v.startsWith('/')) return join(v, 'gpushare');
    return machine ? systemPath : join(home!, fallback, 'gpushare');
  };
  const runtime = env['XDG_RUNTIME_DIR'];
  return {
    configDir: xdg('XDG_CONFIG_HOME', '.config', SYSTEM_PATHS.configDir),
    stateDir: xdg('XDG_STATE_HOME', join('.local', 'state'), SYSTEM_PATHS.stateDir),
    socket: machine && !(runtime !== undefined && runtime.startsWith('/')) ? SYSTEM_PATHS.socket : defaultSocketPath(env, uid),
  };
}

/**
 * Creates `dir` (and parents) and makes it private to this user (0700). A directory that
 * exists but belongs to someone else is refused: under /tmp anyone may create our name first.
 */
export function ensurePrivateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (cause) {
    // Typically a non-root `serve --system` whose service manager did not make the directory for it.
    const code = (cause as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM' && code !== 'EROFS') throw cause;
    throw new GsError(ErrorCodes.forbidden, `cannot create ${dir}: ${(cause as Error).message}; create it for this user (uid ${process.getuid?.() ?? '?'}), e.g. systemd's StateDirectory=/RuntimeDirectory=, or run as root`, { cause });
  }
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new GsError(ErrorCodes.invalidArgument, `${dir} exists and is not a directory`);
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
    throw new GsError(ErrorCodes.forbidden, `${dir} belongs to uid ${st.uid}, not to you (uid ${process.getuid()}); refusing to use it`);
  }
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
}
