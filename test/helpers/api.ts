/**
 * A daemon and its API in this process, for tests that talk to the API through fastify's
 * inject (no socket): the simulated backend, a fresh state directory, the real native paths.
 * `close()` kills what its tasks left running (CPU-only tasks start at once as real processes,
 * and a daemon leaves its tasks running when it closes), then closes the rest.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { buildApi, type ApiApp } from '../../src/api/server.js';
import { openBackend } from '../../src/gpu/open.js';
import { Daemon } from '../../src/node/daemon.js';
import { findNativePaths } from '../../src/node/launcher.js';
import { openDatabase, type Db } from '../../src/node/store/db.js';
import { TaskStore } from '../../src/node/store/tasks.js';

export const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

/** The header a TEST_TOKENS token is sent in. */
export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });
/** The id of the task an answer carries. */
export const idOf = (r: { json: () => unknown }): string => (r.json() as { id: string }).id;
/** The error an answer carries (ErrorBody's `error`). */
export const errorOf = (r: { json: () => unknown }): { code: string; message: string; issues?: { field: string; message: string }[] } => (r.json() as { error: { code: string; message: string } }).error;

/** alice and bob (users), ops (admin): `Bearer alice-token` and so on. */
export const TEST_TOKENS = [
  { sha256: sha('alice-token'), tenant: 'alice', role: 'user' as const },
  { sha256: sha('bob-token'), tenant: 'bob', role: 'user' as const },
  { sha256: sha('root-token'), tenant: 'ops', role: 'admin' as const },
];

export interface InProcessDaemon {
  readonly dir: string;
  readonly dbPath: string;
  readonly db: Db;
  readonly store: TaskStore;
  readonly daemon: Daemon;
  readonly logger: Logger;
  readonly backend: ReturnType<typeof openBackend>['backend'];
  /** Apps to close with it (built by the test with buildApi, or by `api`). */
  readonly apps: ApiApp[];
  /** An API app on this daemon, closed with it. */
  api(options: Omit<Parameters<typeof buildApi>[0], 'daemon' | 'logger' | 'backend'>): Promise<ApiApp>;
  close(): Promise<void>;
}

export function inProcessDaemon(options: { readonly now?: () => number } = {}): InProcessDaemon {
  const dir = mkdtempSync(join(tmpdir(), 'gpushare-api-'));
  const { backend } = openBackend({ backend: 'simulated', simulate: '1xH100-80GB' });
  const dbPath = join(dir, 'db');
  const db = openDatabase(dbPath);
  const store = new TaskStore(db);
  const logger = pino({ level: 'silent' });
  const daemon = new Daemon({ stateDir: dir, backend, store, logger, native: findNativePaths(), policy: 'binpack', killGraceMs: 1000, ...(options.now ? { now: options.now } : {}) });
  daemon.start();
  const apps: ApiApp[] = [];
  return {
    dir,
    dbPath,
    db,
    store,
    daemon,
    logger,
    backend,
    apps,
    async api(o) {
      const app = await buildApi({ ...o, daemon, logger, backend });
      apps.push(app);
      return app;
    },
    async close() {
      for (const t of daemon.list(false)) {
        try {
          if (t.pid !== null) process.kill(-t.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await Promise.all(apps.map((a) => a.close()));
      daemon.close();
      db.close();
      backend.close();
    },
  };
}

/** A port the kernel just gave out and took back: free unless something grabs it in between. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}
