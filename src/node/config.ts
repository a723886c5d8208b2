/**
 * The daemon's configuration: a file (`config.json` in the config directory, or --config) under
 * flags. One zod schema is the source of both the file's validation and the TypeScript type.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { AlertsConfigSchema, type AlertsConfig } from '../contract/alerts.js';
import { historyRetention, type HistoryRetention, type HistoryRetentionSettings } from '../contract/history-retention.js';
import { ErrorCodes, GsError, PRIORITY_LEVELS } from '../domain/index.js';
import { BACKEND_CHOICES } from '../gpu/open.js';
import { PREEMPTION_POLICIES, type PreemptionPolicy } from './planner.js';
import { MPS_MODES, type MpsMode } from './mps.js';
import { overcommitConfig, OvercommitSchema, type OvercommitConfig } from './overcommit-config.js';
import { defaultPaths } from './paths.js';
import type { DaemonNiceSetting } from './priority.js';
import type { TaskCpuWeightSetting } from './task-cpu.js';
import { DEFAULT_TASK_DIR, DEFAULT_UID_BASE, DEFAULT_UID_COUNT, type RunAs } from './sandbox-plan.js';
import type { Quota } from './store/tenants.js';
import { checkTenantName, parseQuota } from './tenants.js';

/** Whether tasks run as per-tenant users: auto is on exactly when the daemon is root. */
export const SANDBOX_MODES = ['auto', 'on', 'off'] as const;
export type SandboxMode = (typeof SANDBOX_MODES)[number];

const TokenSchema = z.strictObject({
  /** sha256 of the bearer token, hex: the file never holds the secret itself. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits (sha256 of the token)'),
  tenant: z.string().min(1).max(64),
  role: z.enum(['user', 'admin']).default('user'),
  /** When it stops working: an ISO 8601 time (2027-01-31T00:00:00Z) or epoch milliseconds; absent: never. */
  expiresAt: z
    .union([z.iso.datetime({ offset: true }), z.number().int().positive()])
    .transform((v) => (typeof v === 'number' ? v : Date.parse(v)))
    .optional(),
  /** The highest priority a user token may submit at (0-1000, or low/normal/high); normal if absent. Admin tokens are not limited. */
  maxPriority: z
    .union([z.number().int().min(0).max(1000), z.enum(['low', 'normal', 'high'])])
    .transform((v) => (typeof v === 'number' ? v : PRIORITY_LEVELS[v]))
    .optional(),
});
export type TokenEntry = z.infer<typeof TokenSchema>;

const QuotaValue = z.union([z.number(), z.string().max(64)]);
const Id = z.number().int().min(1).max(0xfffffffe);
/** Which unprivileged user runs a tenant's tasks: a local account, or numeric ids (NSS/LDAP users). */
const RunAsSchema = z.union([
  z.strictObject({ user: z.string().min(1).max(64) }),
  z.strictObject({ uid: Id, gid: Id, groups: z.array(Id).max(64).optional() }),
]);
const TenantSchema = z.strictObject({
  name: z.string().min(1).max(64),
  /** Fields as `gpushare tenant set-quota` takes them; a field left out is no limit. */
  quota: z.strictObject({ gpus: QuotaValue.optional(), memory: QuotaValue.optional(), compute: QuotaValue.optional() }).default({}),
  /** The user its tasks run as (a root daemon only); absent: one allocated from sandbox.uidBase. */
  runAs: RunAsSchema.optional(),
});

/** Tenant isolation at the operating-system level (docs/security.md). */
const SandboxSchema = z.strictObject({
  /** Tasks as per-tenant unprivileged users: auto (when the daemon is root), on (refuse to start otherwise), off. */
  users: z.enum(SANDBOX_MODES).optional(),
  /** The range tenants' users are allocated from (one uid per tenant, never reused). */
  uidBase: z.number().int().min(1000).max(0x7fff0000).optional(),
  uidCount: z.number().int().min(1).max(1_000_000).optional(),
  /** Who runs tasks of no tenant (submitted over the Unix socket): an allocated user (default), runAs, or "daemon" (the daemon's own user, root included). */
  noTenant: z.union([z.literal('allocated'), z.literal('daemon'), RunAsSchema]).optional(),
  /** Daemon environment variables every task gets (by name); nothing else of the daemon's environment reaches tasks. */
  passEnv: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a variable name')).max(256).optional(),
  /** Where each task's own directory (its region, and its HOME without a passwd one) goes when tasks run as other users. */
  taskDir: z.string().regex(/^\//, 'must be an absolute path').optional(),
  /** A cgroup per task: auto (cgroup v2 where writable), off, or the directory to put tasks' cgroups under. */
  cgroup: z.union([z.enum(['auto', 'off']), z.string().regex(/^\//, 'must be auto, off or an absolute path')]).optional(),
});

/** Name sets /metrics can add beside its own gpushare_* names (src/monitor/metrics/compat.ts). */
export const METRICS_COMPAT_SETS = ['dcgm', 'hami'] as const;
export type MetricsCompatSet = (typeof METRICS_COMPAT_SETS)[number];

export const ConfigFileSchema = z.strictObject({
  stateDir: z.string().min(1).optional(),
  /** Where the API listens: a Unix socket path (anything with a `/`) or `host:port` for TCP. */
  listen: z.array(z.string().min(1)).min(1).optional(),
  backend: z.enum(BACKEND_CHOICES).optional(),
  simulate: z.string().min(1).optional(),
  /** The scheduler policy by name (see src/scheduler/policy.ts). */
  policy: z.string().min(1).optional(),
  /** Seconds between SIGTERM and SIGKILL when a task is killed. */
  killGraceSeconds: z.number().positive().max(3600).optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
  /** Bearer tokens accepted on TCP listeners; Unix sockets rely on file permissions instead. */
  tokens: z.array(TokenSchema).optional(),
  /** TLS for every TCP listener: PEM files; with `clientCa`, clients must also present a certificate it signed (mutual TLS). */
  tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1), clientCa: z.string().min(1).optional() }).optional(),
  /** Plain TCP on an address other than loopback is refused unless this says so (tokens would cross the network in clear). */
  allowInsecureTcp: z.boolean().optional(),
  /** What a higher-priority task that does not fit does to lower-priority ones (planner.ts PREEMPTION_POLICIES). */
  preemption: z.enum(PREEMPTION_POLICIES).optional(),
  /** Slice swap (native/shim/SWAP.md): tasks' memory swappable, suspension by swap first, the checkpoint API as the fallback. On unless false. */
  swap: z.boolean().optional(),
  /** Memory overcommit (overcommit-config.ts): GPUs that may promise more memory than they have, idle slices swapped out. */
  overcommit: OvercommitSchema.optional(),
  /** How long suspending waits for a task's queued GPU work (cuCheckpointProcessLock's timeout); 0: no limit. */
  checkpointLockTimeoutSeconds: z.number().min(0).max(3600).optional(),
  /** An MPS control daemon for sm-partition tasks (mps.ts): auto (real GPUs, when the binary is there), on, off. */
  mps: z.enum(MPS_MODES).optional(),
  /** Tenants and quotas the daemon sets at every start (the file wins over API changes then). */
  tenants: z.array(TenantSchema).optional(),
  sandbox: SandboxSchema.optional(),
  /** The daemon's CPU priority over its tasks (priority.ts): auto (nice -10 where permitted), off, or a nice value. */
  daemonNice: z.union([z.enum(['auto', 'off']), z.number().int().min(-20).max(19)]).optional(),
  /** The CPU weight of everything the daemon starts, against its own (task-cpu.ts): auto (10 where permitted), off, or a cgroup v2 weight 1-10000. */
  taskCpuWeight: z.union([z.enum(['auto', 'off']), z.number().int().min(1).max(10000)]).optional(),
  /**
   * The monitor (src/monitor): how often it samples the GPUs and slices, in seconds (default 1);
   * how long history keeps raw samples and minute and hour rollups (durations, default 1h, 7d,
   * 90d; reloaded on SIGHUP).
   */
  monitor: z.strictObject({
    sampleSeconds: z.number().min(0.1).max(3600).optional(),
    history: z.strictObject({
      retention: z.strictObject({ raw: z.string().optional(), minute: z.string().optional(), hour: z.string().optional() }).optional(),
    }).optional(),
  }).optional(),
  /** GET /metrics: extra name sets for existing dashboards (off by default). */
  metrics: z.strictObject({ compat: z.array(z.enum(METRICS_COMPAT_SETS)).max(METRICS_COMPAT_SETS.length).optional() }).optional(),
  /** Alert rules (changes to the defaults, new ones), webhooks, resolved alerts kept (README, "Alerts"); reloaded on SIGHUP. */
  alerts: AlertsConfigSchema.optional(),
});
export type ConfigFile = z.infer<typeof ConfigFileSchema>;

/** What `gpushare serve` was given on the command line; each wins over the file. */
export interface ServeFlags {
  /** Tasks as per-tenant users: auto, on, off (sandbox.users). */
  readonly sandbox?: string | undefined;
  /** Daemon variables every task gets (sandbox.passEnv). */
  readonly passEnv?: readonly string[] | undefined;
  readonly config?: string | undefined;
  readonly stateDir?: string | undefined;
  readonly listen?: readonly string[] | undefined;
  readonly backend?: string | undefined;
  readonly simulate?: string | undefined;
  readonly policy?: string | undefined;
  readonly logLevel?: string | undefined;
  readonly preemption?: string | undefined;
  /** --swap / --no-swap: slice swap on or off (the file's `swap`; on when neither says). */
  readonly swap?: boolean | undefined;
  /** --overcommit RATIO: every GPU may promise RATIO x its memory (the file's overcommit.gpus). */
  readonly overcommit?: string | undefined;
  /** --timeshare-quantum 30s (overcommit.timeshareQuantumSeconds). */
  readonly timeshareQuantum?: string | undefined;
  readonly mps?: string | undefined;
  readonly tlsCert?: string | undefined;
  readonly tlsKey?: string | undefined;
  readonly tlsClientCa?: string | undefined;
  /** Plain TCP on a non-loopback address, knowingly (allowInsecureTcp). */
  readonly insecure?: boolean | undefined;
  /** auto, off or a nice value (daemonNice). */
  readonly daemonNice?: string | undefined;
  /** auto, off or a weight (taskCpuWeight). */
  readonly taskCpuWeight?: string | undefined;
  /** The system service's paths as the defaults, whoever runs it (paths.ts SYSTEM_PATHS). */
  readonly system?: boolean | undefined;
}

/** PEM files for the TCP listeners (paths; read when the daemon starts). */
export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly clientCa: string | null;
}

export type ListenAddress = { readonly kind: 'unix'; readonly path: string } | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

export interface DaemonConfig {
  readonly stateDir: string;
  readonly listen: readonly ListenAddress[];
  readonly backend: string | undefined;
  readonly simulate: string | undefined;
  readonly policy: string;
  readonly killGraceMs: number;
  readonly logLevel: string;
  readonly tokens: readonly TokenEntry[];
  /** null: TCP listeners speak plain HTTP (loopback only, unless allowInsecureTcp). */
  readonly tls: TlsFiles | null;
  readonly allowInsecureTcp: boolean;
  readonly preemption: PreemptionPolicy;
  /** Slice swap on: tasks get GPUSHARE_SWAP; suspension swaps first. */
  readonly swap: boolean;
  /** Memory overcommit; null: no GPU is overcommitted. */
  readonly overcommit: OvercommitConfig | null;
  readonly lockTimeoutMs: number;
  readonly mps: MpsMode;
  readonly tenants: readonly { readonly name: string; readonly quota: Quota; readonly runAs?: RunAs | undefined }[];
  readonly sandbox: SandboxConfig;
  readonly daemonNice: DaemonNiceSetting;
  readonly taskCpuWeight: TaskCpuWeightSetting;
  /** Milliseconds between the monitor's samples. */
  readonly sampleMs: number;
  /** How long history keeps each resolution (monitor.history.retention). */
  readonly historyRetention: HistoryRetention;
  /** Name sets /metrics adds beside gpushare_*. */
  readonly metricsCompat: readonly MetricsCompatSet[];
  /** The file's `alerts` section as written ({} if none): serve.ts applies it over the default rules. */
  readonly alerts: AlertsConfig;
  /** The file read, if any, for the startup log. */
  readonly configFile: string | null;
}

/** Merges defaults, the config file and flags, validating each; throws GS_ERR_INVALID_ARGUMENT. */
export function loadConfig(flags: ServeFlags, env: Readonly<Record<string, string | undefined>> = process.env): DaemonConfig {
  const defaults = defaultPaths(env, undefined, undefined, flags.system === true);
  const path = flags.config ?? join(defaults.configDir, 'config.json');
  const file = readConfigFile(path, flags.config !== undefined);
  const listen = (flags.listen && flags.listen.length > 0 ? flags.listen : file.value.listen) ?? [defaults.socket];
  const config: DaemonConfig = {
    stateDir: flags.stateDir ?? file.value.stateDir ?? defaults.stateDir,
    listen: listen.map(parseListen),
    backend: flags.backend ?? file.value.backend,
    simulate: flags.simulate ?? file.value.simulate,
    policy: flags.policy ?? file.value.policy ?? 'binpack',
    killGraceMs: (file.value.killGraceSeconds ?? 10) * 1000,
    logLevel: flags.logLevel ?? file.value.logLevel ?? 'info',
    tokens: file.value.tokens ?? [],
    tls: tlsFiles(flags, file.value.tls),
    allowInsecureTcp: flags.insecure ?? file.value.allowInsecureTcp ?? false,
    preemption: parsePreemption(flags.preemption ?? file.value.preemption ?? 'suspend'),
    swap: swapOn(flags, file.value),
    overcommit: overcommitConfig(file.value.overcommit, flags, swapOn(flags, file.value)),
    lockTimeoutMs: (file.value.checkpointLockTimeoutSeconds ?? 30) * 1000,
    mps: parseMps(flags.mps ?? file.value.mps ?? 'auto'),
    tenants: configTenants(path, file.value.tenants ?? []),
    sandbox: sandboxConfig({ ...file.value.sandbox, ...(flags.sandbox !== undefined ? { users: parseSandboxMode(flags.sandbox) } : {}), ...(flags.passEnv ? { passEnv: [...flags.passEnv] } : {}) }),
    daemonNice: flags.daemonNice !== undefined ? parseDaemonNice(flags.daemonNice) : (file.value.daemonNice ?? 'auto'),
    taskCpuWeight: flags.taskCpuWeight !== undefined ? parseTaskCpuWeight(flags.taskCpuWeight) : (file.value.taskCpuWeight ?? 'auto'),
    sampleMs: Math.round((file.value.monitor?.sampleSeconds ?? 1) * 1000),
    historyRetention: configRetention(path, file.value.monitor?.history?.retention ?? {}),
    metricsCompat: [...new Set(file.value.metrics?.compat ?? [])],
    alerts: file.value.alerts ?? {},
    configFile: file.found ? path : null,
  };
  if (config.listen.some((l) => l.kind === 'tcp') && config.tokens.length === 0) {
    throw new GsError(ErrorCodes.invalidArgument, 'a TCP listen address needs bearer tokens in the config file ("tokens": [{"sha256", "tenant", "role"}]); the API is never open on the network without them');
  }
  for (const address of config.listen) {
    if (address.kind !== 'tcp' || config.tls !== null || config.allowInsecureTcp || isLoopback(address.host)) continue;
    throw new GsError(
      ErrorCodes.invalidArgument,
      `listen address ${address.host}:${address.port} is not a loopback address, and plain TCP would carry bearer tokens and task data in clear: give a certificate ("tls": {"cert", "key"} in the config file, or --tls-cert and --tls-key), or allow plain TCP knowingly ("allowInsecureTcp": true, or --insecure)`,
    );
  }
  return config;
}

/** What the config file says about tenant isolation, with the defaults filled in. */
export interface SandboxConfig {
  readonly users: SandboxMode;
  readonly uidBase: number;
  readonly uidCount: number;
  readonly noTenant: 'allocated' | 'daemon' | RunAs;
  readonly passEnv: readonly string[];
  readonly taskDir: string;
  readonly cgroup: string;
}

/**
 * Slice swap is on unless --no-swap or `"swap": false` says otherwise: where the library is
 * loaded a suspension swaps (tenths of a second) before it falls back to the CUDA checkpoint
 * API (seconds), and tasks' memory can still be shared between their processes through CUDA
 * IPC (native/shim/SWAP.md, "Sharing memory between processes").
 */
function swapOn(flags: ServeFlags, file: ConfigFile): boolean {
  return flags.swap ?? file.swap ?? true;
}

function sandboxConfig(file: NonNullable<ConfigFile['sandbox']>): SandboxConfig {
  return {
    users: file.users ?? 'auto',
    uidBase: file.uidBase ?? DEFAULT_UID_BASE,
    uidCount: file.uidCount ?? DEFAULT_UID_COUNT,
    noTenant: file.noTenant ?? 'allocated',
    passEnv: file.passEnv ?? [],
    taskDir: file.taskDir ?? DEFAULT_TASK_DIR,
    cgroup: file.cgroup ?? 'auto',
  };
}

/** TLS files from the flags (each wins over the file's), checked for a pair; null: none asked for. */
function tlsFiles(flags: ServeFlags, file: ConfigFile['tls']): TlsFiles | null {
  const cert = flags.tlsCert ?? file?.cert;
  const key = flags.tlsKey ?? file?.key;
  const clientCa = flags.tlsClientCa ?? file?.clientCa ?? null;
  if (cert === undefined && key === undefined) {
    if (clientCa !== null) throw new GsError(ErrorCodes.invalidArgument, 'tls: a client CA (--tls-client-ca, tls.clientCa) needs a certificate and key for the daemon too (--tls-cert and --tls-key)');
    return null;
  }
  if (cert === undefined || key === undefined) throw new GsError(ErrorCodes.invalidArgument, `tls: ${cert === undefined ? 'a key without a certificate' : 'a certificate without a key'}; give both (--tls-cert and --tls-key, or tls.cert and tls.key)`);
  return { cert, key, clientCa };
}

/** 127.0.0.0/8, ::1 and localhost: only this machine can reach them. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || /^::ffff:127\./i.test(host);
}

/** Tenants from the file, each quota checked as the API would: a bad one stops the start, saying where. */
function configRetention(path: string, settings: HistoryRetentionSettings): HistoryRetention {
  const r = historyRetention(settings);
  if (!r.ok) throw new GsError(ErrorCodes.invalidArgument, `config file ${path}: ${r.problem}`);
  return r.value;
}

function configTenants(path: string, tenants: NonNullable<ConfigFile['tenants']>): { name: string; quota: Quota; runAs?: RunAs }[] {
  const seen = new Set<string>();
  return tenants.map((t, i) => {
    const where = `config file ${path}: tenants.${i}`;
    try {
      checkTenantName(t.name);
      if (seen.has(t.name)) throw new GsError(ErrorCodes.invalidArgument, `tenant "${t.name}" is listed twice`);
      seen.add(t.name);
      return { name: t.name, quota: parseQuota(t.quota), ...(t.runAs ? { runAs: t.runAs } : {}) };
    } catch (err) {
      throw new GsError(ErrorCodes.invalidArgument, `${where}: ${(err as Error).message}`, { cause: err });
    }
  });
}

function readConfigFile(path: string, required: boolean): { value: ConfigFile; found: boolean } {
  if (!existsSync(path)) {
    if (required) throw new GsError(ErrorCodes.notFound, `config file ${path} does not exist`);
    return { value: {}, found: false };
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new GsError(ErrorCodes.invalidArgument, `config file ${path} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  const parsed = ConfigFileSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ');
    throw new GsError(ErrorCodes.invalidArgument, `config file ${path}: ${issues}`);
  }
  return { value: parsed.data, found: true };
}

function parsePreemption(text: string): PreemptionPolicy {
  if ((PREEMPTION_POLICIES as readonly string[]).includes(text)) return text as PreemptionPolicy;
  throw new GsError(ErrorCodes.invalidArgument, `preemption: "${text}" is not one of ${PREEMPTION_POLICIES.join(', ')}`);
}

function parseSandboxMode(text: string): SandboxMode {
  if ((SANDBOX_MODES as readonly string[]).includes(text)) return text as SandboxMode;
  throw new GsError(ErrorCodes.invalidArgument, `sandbox: "${text}" is not one of ${SANDBOX_MODES.join(', ')}`);
}

function parseMps(text: string): MpsMode {
  if ((MPS_MODES as readonly string[]).includes(text)) return text as MpsMode;
  throw new GsError(ErrorCodes.invalidArgument, `mps: "${text}" is not one of ${MPS_MODES.join(', ')}`);
}

/** `/run/x.sock` or `unix:/run/x.sock` is a socket; `127.0.0.1:7070`, `[::1]:7070` or `:7070` is TCP (`:0`: any free port). */
export function parseListen(text: string): ListenAddress {
  const value = text.trim();
  if (value.startsWith('unix:')) return { kind: 'unix', path: value.slice(5) };
  if (value.includes('/')) return { kind: 'unix', path: value };
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  // Port 0: the system picks a free one; the daemon prints the address it got.
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new GsError(ErrorCodes.invalidArgument, `listen address "${text}" is neither a Unix socket path (containing "/") nor host:port with a port from 0 (any free port) to 65535`);
  }
  return { kind: 'tcp', host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** `--daemon-nice`: auto, off, or an integer nice value from -20 to 19. */
export function parseTaskCpuWeight(text: string): TaskCpuWeightSetting {
  if (text === 'auto' || text === 'off') return text;
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (Number.isInteger(n) && n >= 1 && n <= 10000) return n;
  throw new GsError(ErrorCodes.invalidArgument, `task CPU weight: "${text.slice(0, 40)}" is not auto, off, or a weight from 1 to 10000`);
}

export function parseDaemonNice(text: string): DaemonNiceSetting {
  if (text === 'auto' || text === 'off') return text;
  const n = /^-?\d+$/.test(text) ? Number(text) : NaN;
  if (Number.isInteger(n) && n >= -20 && n <= 19) return n;
  throw new GsError(ErrorCodes.invalidArgument, `daemon nice: "${text.slice(0, 40)}" is not auto, off, or a nice value from -20 to 19`);
}
