import { mkdirSync, chmodSync, lstatSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { defaultSocketPath } from '../contract/paths.js';
import { ErrorCodes, GsError } from '../domain/index.js';

/** Where gpushare keeps things by default, per the XDG base directory spec. */
export interface DefaultPaths {
  readonly configDir: string;
  readonly stateDir: string;
  /** The API socket the daemon listens on and the CLI dials when nothing else is said. */
  readonly socket: string;
}

type Env = Readonly<Record<string, string | undefined>>;

/** The defaults for this user; pure over `env`, the home directory and the uid. */
export function defaultPaths(env: Env = process.env, home = homedir(), uid = userInfo().uid): DefaultPaths {
  const xdg = (name: string, fallback: string): string => {
    const v = env[name];
    // The spec says relative paths are invalid and must be ignored.
    return v !== undefined && v.startsWith('/') ? v : fallback;
  };
  return {
    configDir: join(xdg('XDG_CONFIG_HOME', join(home, '.config')), 'gpushare'),
    stateDir: join(xdg('XDG_STATE_HOME', join(home, '.local', 'state')), 'gpushare'),
    socket: defaultSocketPath(env, uid),
  };
}

/**
 * Creates `dir` (and parents) and makes it private to this user (0700). A directory that
 * exists but belongs to someone else is refused: under /tmp anyone may create our name first.
 */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new GsError(ErrorCodes.invalidArgument, `${dir} exists and is not a directory`);
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
    throw new GsError(ErrorCodes.forbidden, `${dir} belongs to uid ${st.uid}, not to you (uid ${process.getuid()}); refusing to use it`);
  }
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
}
