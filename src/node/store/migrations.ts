/**
 * Schema migrations, applied in order, each once, inside a transaction. Append only: a
 * published migration never changes, so every database reaches the same schema.
 */
export const MIGRATIONS: readonly { readonly version: number; readonly name: string; readonly sql: string }[] = [
  {
    version: 1,
    name: 'tasks, events, audit, tenants',
    sql: `
      CREATE TABLE tasks (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL,
        command TEXT NOT NULL,
        env TEXT NOT NULL,
        cwd TEXT NOT NULL,
        request TEXT NOT NULL,
        priority INTEGER NOT NULL,
        tenant TEXT,
        gpus TEXT,
        compute_limit_percent REAL,
        pid INTEGER,
        pid_start_time INTEGER,
        submitted_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        exit_code INTEGER,
        signal TEXT,
        message TEXT,
        peak_memory_bytes INTEGER,
        kill_requested INTEGER NOT NULL DEFAULT 0,
        adopted INTEGER NOT NULL DEFAULT 0,
        stdout_path TEXT NOT NULL,
        stderr_path TEXT NOT NULL,
        region_path TEXT NOT NULL
      );
      CREATE INDEX tasks_live ON tasks (state, priority DESC, seq);
      CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        type TEXT NOT NULL,
        task_id TEXT,
        data TEXT NOT NULL
      );
      -- One row per change made through the API: who, what, to which thing.
      CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        role TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        detail TEXT NOT NULL
      );
      -- Quotas per tenant (enforced by the scheduler's quota plugins once wired in).
      CREATE TABLE tenants (
        name TEXT PRIMARY KEY,
        quota_gpus INTEGER,
        quota_memory_bytes INTEGER,
        quota_compute_milli INTEGER,
        created_at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'suspend and resume: suspended_at, suspensions, preempted_by, auto_resume',
    sql: `
      ALTER TABLE tasks ADD COLUMN suspended_at INTEGER;
      ALTER TABLE tasks ADD COLUMN suspensions INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE tasks ADD COLUMN preempted_by TEXT;
      ALTER TABLE tasks ADD COLUMN auto_resume INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 3,
    name: 'api: audit result and message, tenant updated_at',
    sql: `
      -- Refused changes are audited too: result is 'ok' or the refusal's error code.
      ALTER TABLE audit ADD COLUMN result TEXT NOT NULL DEFAULT 'ok';
      ALTER TABLE audit ADD COLUMN message TEXT;
      ALTER TABLE tenants ADD COLUMN updated_at INTEGER;
      UPDATE tenants SET updated_at = created_at;
    `,
  },
  {
    version: 4,
    name: 'sm-partition: each task\'s SM range per GPU',
    sql: `
      -- JSON [{uuid, offset, count}] per GPU for isolation sm-partition; kept while suspended
      -- (the process's green context stays at that offset), counted as taken only while held.
      ALTER TABLE tasks ADD COLUMN sm_ranges TEXT;
    `,
  },
  {
    version: 5,
    name: 'timed actions that survive a restart: kill signal and deadline, resume target',
    sql: `
      -- A kill's signal and when it escalates to SIGKILL (UTC epoch ms): a restarted daemon
      -- sends the signal again and re-arms the escalation (lifecycle.ts).
      ALTER TABLE tasks ADD COLUMN kill_signal TEXT;
      ALTER TABLE tasks ADD COLUMN kill_deadline INTEGER;
      -- JSON [TaskGpu] while resuming: where the task is being restored to (its gpus column
      -- keeps the old placement until the restore succeeded).
      ALTER TABLE tasks ADD COLUMN resume_gpus TEXT;
    `,
  },
  {
    version: 6,
    name: 'api: tokens made through the API (expiry), revocations, idempotency keys',
    sql: `
      -- Bearer tokens made through the API (config-file tokens live in the file); only the sha256
      -- is kept. id: its first 12 hex digits, the name lists, revocation and the audit log use.
      CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        sha256 TEXT NOT NULL UNIQUE,
        tenant TEXT NOT NULL,
        role TEXT NOT NULL,
        max_priority INTEGER,
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        expires_at INTEGER
      );
      -- Revoked tokens, from the config file or the API, by sha256: checked on every request.
      CREATE TABLE token_revocations (
        sha256 TEXT PRIMARY KEY,
        revoked_at INTEGER NOT NULL,
        revoked_by TEXT NOT NULL
      );
      -- A submission's Idempotency-Key per caller: a retry with the same key and body gets the
      -- task the first one made. Kept 24 h (rows older are ignored and pruned).
      CREATE TABLE idempotency_keys (
        actor TEXT NOT NULL,
        key TEXT NOT NULL,
        body_sha256 TEXT NOT NULL,
        task_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (actor, key)
      );
      CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
    `,
  },
  {
    version: 7,
    name: 'sandbox: the uid allocated to each tenant',
    sql: `
      -- One uid per tenant from the configured range, never reused (a deleted tenant keeps its
      -- row): files a tenant's tasks left behind never become another tenant's. The key ''
      -- stands for tasks of no tenant (no tenant name is empty).
      CREATE TABLE tenant_uids (
        tenant TEXT PRIMARY KEY,
        uid INTEGER NOT NULL UNIQUE,
        allocated_at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 8,
    name: 'gpu health: cordons and faults per GPU',
    sql: `
      -- A GPU that takes no new work (node/gpu-health.ts): an admin's cordon, and/or an XID or
      -- uncorrectable ECC fault not yet recovered. By UUID (indices can change across reboots);
      -- a GPU with neither has no row. fault_lost_at: when the GPU was first seen lost after the
      -- fault (a reset under way); the next reading that reaches it again recovers the fault.
      CREATE TABLE gpu_health (
        uuid TEXT PRIMARY KEY,
        cordoned_by TEXT,
        cordoned_at INTEGER,
        cordon_note TEXT,
        fault_kind TEXT,
        fault_code INTEGER,
        fault_at INTEGER,
        fault_lost_at INTEGER
      );
    `,
  },
];
