/**
 * The composition root: `gpushare serve` as a function. Opens the backend, the state and the
 * listeners, wires the daemon (src/node) to its API (src/api), starts it, and returns something
 * that closes all of them. Tasks are never stopped on close: the next start re-adopts them.
 * It lives outside src/node so that the daemon never imports its own API (no layer cycle).
 */
import { existsSync, chmodSync, readFileSync, unlinkSync } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { pino, type Logger } from 'pino';
import { buildApi, type ApiApp } from '../api/server.js';
import { DASHBOARD_PATH } from '../api/routes/dashboard.js';
import { ErrorCodes, GsError } from '../domain/index.js';
import { openCheckpointApi } from '../gpu/checkpoint.js';
import { openBackend } from '../gpu/open.js';
import { loadConfig, type DaemonConfig, type ListenAddress, type ServeFlags } from '../node/config.js';
import { planReload, type ReloadPlan } from '../node/config-reload.js';
import { Daemon } from '../node/daemon.js';
import { findNativePaths } from '../node/launcher.js';
import { MpsControl } from '../node/mps.js';
import { applyDaemonNice } from '../node/priority.js';
import { setUpTaskCpu } from '../node/task-cpu.js';
import { daemonKey } from '../node/sandbox-plan.js';
import { readSmGroups } from '../node/smgroups.js';
import { ensurePrivateDir } from '../node/paths.js';
import { lockStateDir } from '../node/state-lock.js';
import { privateDatabase, Sandbox, sandboxUsers } from '../node/sandbox.js';
import { TenantUidStore } from '../node/store/tenant-uids.js';
import { startCheckpointer } from '../node/store/checkpointer.js';
import { openDatabase } from '../node/store/db.js';
import { TaskStore } from '../node/store/tasks.js';
import { TokenAuthority } from '../node/tokens.js';
import { SampleHub } from '../monitor/hub.js';
import { openHistoryStore, recordHistory } from '../monitor/history/open.js';
import { readingsOfSample, type GpuFaultReason, type GpuHealthState } from '../node/gpu-health.js';
import { Sampler } from '../monitor/sampler.js';
import { alertSettings, type AlertSettings } from '../monitor/alerts/rules.js';
import { AlertService } from '../monitor/alerts/service.js';
import { AlertStore } from '../monitor/alerts/store.js';
import { MetricsExporter } from '../monitor/metrics/exporter.js';

export interface RunningDaemon {
  readonly daemon: Daemon;
  /** Where the monitor meets the GPU health book (gpuHealthHooks). */
  readonly gpuHealth: GpuHealthHooks;
  /** Where it listens, as the CLI's --host would name it. */
  readonly addresses: readonly string[];
  /** Where the monitor's samples go: every monitoring consumer (history, metrics, alerts) reads them here. */
  readonly samples: SampleHub;
  /**
   * Reads the config again (`load` throws on a bad file) and applies what is safe while tasks
   * run (config-reload.ts); what needs a restart is logged as ignored, naming each key. A bad
   * file changes nothing: it is logged and the running config stays. Never throws.
   */
  reload(load: () => DaemonConfig): ReloadOutcome;
  close(): Promise<void>;
}

/**
 * The GPU health book as the monitor's parts reach it (issue 19): the alert engine calls
 * `onGpuFault` on an XID or uncorrectable ECC errors (the GPU takes no new placements until it
 * recovers or an admin uncordons it); the sampler reads `state` for GpuSample.health and
 * cordoned.
 */
export interface GpuHealthHooks {
  onGpuFault(uuid: string, reason: GpuFaultReason): void;
  state(uuid: string): GpuHealthState;
}

export function gpuHealthHooks(daemon: Daemon): GpuHealthHooks {
  return { onGpuFault: (uuid, reason) => daemon.markGpuFault(uuid, reason), state: (uuid) => daemon.gpuHealth(uuid) };
}

export type ReloadOutcome = ({ readonly ok: true } & ReloadPlan) | { readonly ok: false; readonly problem: string };

export interface ServeOptions {
  readonly config: DaemonConfig;
  /** Where pino writes (stderr by default). */
  readonly logger?: Logger;
  /** One-line messages for the person who started the daemon. */
  readonly say?: (line: string) => void;
}

/**
 * The daemon's JSON log on stderr, written synchronously: a line is in the pipe or file before
 * the call that logged it returns, so a crash (SIGKILL, an abort) loses none of the last lines,
 * which are the ones that say what happened. pino's default destination buffers and writes
 * later; measured with bench/log-sync.bench.ts, writing synchronously costs about 1.3 µs
 * more a line, and the daemon writes a few lines per task.
 */
export function daemonLogger(level: string): Logger {
  return pino({ level }, pino.destination({ dest: 2, sync: true }));
}

/**
 * `gpushare serve` with its command-line flags: the config file (flags win over it), then serve.
 * SIGHUP reads the file again with the same flags (docs/operations.md, "Reloading").
 */
export async function serveWithFlags(flags: ServeFlags): Promise<RunningDaemon> {
  const running = await serve({ config: loadConfig(flags) });
  const onHangup = (): void => void running.reload(() => loadConfig(flags));
  process.on('SIGHUP', onHangup);
  return {
    ...running,
    close: async () => {
      process.off('SIGHUP', onHangup);
      await running.close();
    },
  };
}

export async function serve(options: ServeOptions): Promise<RunningDaemon> {
  const { config } = options;
  const say = options.say ?? ((line: string) => process.stderr.write(`${line}\n`));
  const logger = options.logger ?? daemonLogger(config.logLevel);
  // Decided first: `sandbox.users: on` without root stops the start before anything is opened.
  const users = sandboxUsers(config.sandbox, process.getuid?.() === 0);
  // Before anything is opened: a bad alert rule stops the start saying which.
  const alerts = alertSettingsOf(config);
  ensurePrivateDir(config.stateDir);
  // Before anything else of the directory is opened: a second daemon there stops here, changing nothing.
  const lock = lockStateDir(config.stateDir, config.listen.map(listenName));
  try {
    const running = await serveLocked(options, logger, say, users, alerts);
    lock.describe(running.addresses);
    return { ...running, close: () => running.close().finally(() => lock.release()) };
  } catch (err) {
    lock.release();
    throw err;
  }
}

/** The rest of the start, with the state directory locked (state-lock.ts). */
async function serveLocked(options: ServeOptions, logger: Logger, say: (line: string) => void, users: ReturnType<typeof sandboxUsers>, alertSetup: AlertSettings): Promise<RunningDaemon> {
  const { config } = options;
  const native = findNativePaths();
  // Before the spawner starts: it shares the daemon's session, so its group's priority (priority.ts).
  const priority = applyDaemonNice(config.daemonNice);
  if (priority.kind === 'set') logger.info({ nice: priority.nice }, "the daemon's CPU priority is above its tasks' (autogroup nice)");
  else if (priority.kind === 'unavailable') {
    if (priority.asked) say(`gpushare serve: ${priority.problem}; the API may answer slowly while tasks keep every CPU busy.`);
    else logger.info({ problem: priority.problem }, "the daemon's CPU priority is the same as its tasks'");
  }
  const taskCpu = setUpTaskCpu(config.taskCpuWeight, daemonKey(config.stateDir));
  const taskCpuGroup = taskCpu.kind === 'set' ? taskCpu.group : null;
  if (taskCpu.kind === 'set') logger.info({ weight: taskCpu.group.weight, cgroup: taskCpu.group.dir }, "everything the daemon starts runs at a lower CPU weight than the daemon (task-cpu.ts)");
  else if (taskCpu.kind === 'unavailable') {
    if (taskCpu.asked) say(`gpushare serve: ${taskCpu.problem}; submissions may wait for the CPU behind the tasks they start.`);
    else logger.info({ problem: taskCpu.problem }, "the tasks' CPU weight is the daemon's");
  }
  const { backend, notice } = openBackend({ backend: config.backend, simulate: config.simulate, nvmlPath: process.env['GPUSHARE_NVML_PATH'] });
  if (notice) say(notice);
  if (backend.kind === 'simulated') say(`gpushare serve: using ${backend.description.replace(/^simulated GPUs/i, 'SIMULATED GPUs')}, not real ones: tasks get simulated GPU UUIDs; nothing measured here is real.`);
  if (native.preload === null) say('gpushare serve: libgpushare.so not found; tasks run WITHOUT memory/compute enforcement (build it with `npm run build`).');
  const checkpoint = openCheckpointApi();
  const checkpointProblem = checkpoint.ok ? undefined : `${checkpoint.error.message}; suspend, resume and preemption by suspension are unavailable`;
  if (checkpointProblem) say(`gpushare serve: ${checkpointProblem}.`);
  // Before MPS starts: the probe creates no context, but it must not meet an MPS server either.
  const smGroups = await readSmGroups(backend, join(dirname(native.exec), 'gpushare-smprobe'), process.env);
  if (smGroups.problems.length > 0) logger.info({ problems: smGroups.problems }, 'SM groups not known for every GPU; sm-partition placement assumes every whole group of 8 there');
  else if (smGroups.groups.size > 0) logger.info({ smGroups: Object.fromEntries(smGroups.groups) }, 'SM groups for sm-partition placement');
  // Before the database opens: mps: on with no binary is a configuration error, nothing to undo.
  const mps = new MpsControl({ mode: config.mps, backendKind: backend.kind, dir: join(config.stateDir, 'mps'), env: process.env, logger });
  if (config.mps === 'on') {
    const started = mps.ensure();
    if (started.pipeDir === null) {
      backend.close();
      if (checkpoint.ok) checkpoint.value.close();
      throw new GsError(ErrorCodes.mpsUnavailable, `mps: on, but the MPS control daemon could not be started: ${started.problem}`);
    }
    say(`gpushare serve: MPS control daemon running for sm-partition tasks (CUDA_MPS_PIPE_DIRECTORY=${started.pipeDir}).`);
  } else if (!mps.status().available) {
    logger.info({ mps: mps.status() }, 'no MPS for sm-partition tasks');
  }
  const dbPath = join(config.stateDir, 'gpushare.db');
  privateDatabase(dbPath);
  const db = openDatabase(dbPath);
  const checkpointer = startCheckpointer(db, dbPath, { onError: (message) => logger.warn({ message }, 'WAL checkpoint failed; retrying') });
  const store = new TaskStore(db);
  let sandbox: Sandbox;
  try {
    sandbox = new Sandbox({
      config: config.sandbox,
      stateDir: config.stateDir,
      usersOn: users.on,
      usersProblem: users.problem,
      runAs: new Map(config.tenants.flatMap((t) => (t.runAs ? [[t.name, t.runAs] as const] : []))),
      uids: new TenantUidStore(db),
      daemonEnv: process.env,
      now: Date.now,
      onProblem: (message) => logger.warn({ message }, 'task cgroup'),
    });
  } catch (err) {
    await checkpointer.stop();
    db.close();
    backend.close();
    if (checkpoint.ok) checkpoint.value.close();
    throw err;
  }
  for (const line of sandbox.notices()) say(line);
  logger.info({ sandbox: sandbox.status() }, 'tenant isolation');
  // Every monitoring consumer (metrics, history, alerts, the dashboard) reads samples from here.
  const samples = new SampleHub((err) => logger.warn({ err }, 'a monitoring consumer failed on a sample'));
  // The daemon is made just below: the exporter asks it only when scraped or told of an event, after.
  const metrics: MetricsExporter = new MetricsExporter({
    samples,
    tenants: () => daemon.tenants(),
    submittedAt: (id) => {
      try {
        return daemon.get(id).submittedAt;
      } catch {
        return null; // removed meanwhile
      }
    },
    compat: config.metricsCompat,
  });
  const daemon: Daemon = new Daemon({
    observer: metrics,
    stateDir: config.stateDir,
    backend,
    store,
    logger,
    native,
    policy: config.policy,
    killGraceMs: config.killGraceMs,
    checkpoint: checkpoint.ok ? checkpoint.value : null,
    ...(checkpointProblem ? { checkpointProblem } : {}),
    preemption: config.preemption,
    swap: config.swap,
    overcommit: config.overcommit,
    lockTimeoutMs: config.lockTimeoutMs,
    mps,
    smGroups: smGroups.groups,
    sandbox,
    taskCpu: taskCpuGroup,
  });
  // One authority for every listener: a token revoked through one is refused on all.
  const tokens = new TokenAuthority(config.tokens, { db, tasks: store });
  // Its own file, so its writes never hold up the task store's commits (monitor/history/store.ts).
  const historyPath = join(config.stateDir, 'history.sqlite');
  privateDatabase(historyPath);
  const history = openHistoryStore(historyPath, Date.now(), config.historyRetention, (message) => logger.warn({ message }, 'history'));
  const stopHistory = recordHistory(samples, history);
  // Its checkpoints off the event loop too, as the task store's.
  const historyCheckpointer = history.checkpointsBy((historyDb, path) => startCheckpointer(historyDb, path, { synchronous: 'OFF', onError: (message) => logger.warn({ message }, 'history WAL checkpoint failed; retrying') }));
  const stopEvents = daemon.onEvent((event) => metrics.taskEvent(event));
  // Each sample's GPUs tell the health book of resets and ECC counts back at 0: faults recover without an API call.
  const stopObserving = samples.subscribe((sample) => daemon.observeGpus(readingsOfSample(sample), sample.at));
  const alerts = new AlertService({
    source: samples,
    store: new AlertStore(db, alertSetup.keepResolved),
    settings: alertSetup,
    hostname: hostname(),
    tenantOf: (task) => {
      try {
        return daemon.get(task).tenant;
      } catch {
        return undefined;
      }
    },
    audit: (by, entry) => daemon.recordRefusal({ actor: by.actor, role: by.role as 'admin' | 'user' }, { ...entry, result: 'ok' }),
    onProblem: (message, detail) => logger.warn(detail, message),
    // An XID or uncorrectable ECC error fences the GPU (the health book): no new placements until it recovers or is uncordoned.
    onGpuFault: (uuid, reason) => {
      logger.error({ uuid, ...reason }, 'GPU fault (XID or uncorrectable ECC error): no new placements on it until it recovers or an admin uncordons it');
      daemon.markGpuFault(uuid, reason);
    },
  });
  alerts.start();
  const apps: ApiApp[] = [];
  const sockets: string[] = [];
  let sampler: Sampler | null = null;
  const close = async (): Promise<void> => {
    sampler?.close();
    stopEvents();
    await Promise.all(apps.map((a) => a.close()));
    for (const s of sockets) if (existsSync(s)) unlinkSync(s);
    stopObserving();
    await alerts.close();
    daemon.close();
    taskCpuGroup?.close();
    stopHistory();
    history.close();
    await historyCheckpointer.stop();
    await checkpointer.stop();
    db.close();
    backend.close();
    if (checkpoint.ok) checkpoint.value.close();
  };
  try {
    for (const t of config.tenants) daemon.declareTenant(t.name, t.quota, `config:${config.configFile ?? 'file'}`);
    daemon.start();
    // A failing backend would say so every second: each different problem is logged once.
    let lastProblem: string | null = null;
    sampler = new Sampler({
      backend,
      daemon,
      publish: (sample) => {
        lastProblem = null;
        samples.publish(sample);
      },
      periodMs: config.sampleMs,
      holds: (uuid) => {
        const held = daemon.gpuHealth(uuid);
        return { cordoned: held.cordoned, faulted: held.fault !== null };
      },
      onError: (err) => {
        const problem = err instanceof Error ? err.message : String(err);
        if (problem !== lastProblem) logger.warn({ err }, 'the monitor could not take a sample; it tries again each period');
        lastProblem = problem;
      },
    });
    const addresses: string[] = [];
    for (const address of config.listen) {
      const https = address.kind === 'tcp' ? tlsContents(config) : null;
      const app = await buildApi({ daemon, logger, tokens: address.kind === 'unix' ? null : tokens, tokenAdmin: tokens, backend, https, samples, history, alerts, metrics });
      apps.push(app);
      addresses.push(await listen(app, address, sockets, https !== null));
      if (address.kind === 'tcp' && https === null) say(`gpushare serve: ${address.host}:${address.port} speaks plain HTTP: bearer tokens cross it in clear${config.allowInsecureTcp ? ' (allowInsecureTcp)' : ' (loopback only)'}.`);
    }
    logger.info({ stateDir: config.stateDir, addresses, backend: backend.description, config: config.configFile }, 'gpushare daemon listening');
    say(`gpushare serve: listening on ${addresses.join(', ')}; state in ${config.stateDir}`);
    // A browser reaches the dashboard over TCP only; on a Unix socket alone there is no URL to give.
    const dashboards = addresses.filter((a) => /^https?:\/\//.test(a)).map((a) => `${a}${DASHBOARD_PATH}`);
    if (dashboards.length > 0) say(`gpushare serve: dashboard at ${dashboards.join(', ')}`);
    let current = config;
    const reload = (load: () => DaemonConfig): ReloadOutcome => {
      try {
        const next = load();
        const plan = planReload(current, next);
        // Alert rules and TLS first: a bad rule or unreadable files refuse the whole reload before anything changed.
        const nextAlerts = plan.apply.includes('alerts') ? alertSettingsOf(next) : null;
        const https = plan.apply.includes('tls') ? tlsContents(next) : null;
        if (https !== null) {
          const mutual = https.ca !== undefined ? { ca: https.ca } : {};
          for (const app of apps) if ('setSecureContext' in app.server) (app.server as HttpsServer).setSecureContext({ cert: https.cert, key: https.key, minVersion: 'TLSv1.2', ...mutual });
        }
        if (plan.apply.includes('tenants')) for (const t of next.tenants) daemon.declareTenant(t.name, t.quota, `config:${next.configFile ?? 'file'}`);
        if (plan.apply.includes('tokens')) tokens.replaceConfigTokens(next.tokens);
        if (plan.apply.includes('logLevel')) logger.level = next.logLevel;
        if (nextAlerts !== null) alerts.configure(nextAlerts);
        if (plan.apply.includes('historyRetention')) history.setRetention(next.historyRetention);
        // What was not applied keeps its running value, so the next reload compares with that.
        current = { ...current, ...(plan.apply.includes('tenants') ? { tenants: next.tenants.map((t) => ({ ...t, runAs: current.tenants.find((c) => c.name === t.name)?.runAs })) } : {}), ...(plan.apply.includes('tokens') ? { tokens: next.tokens } : {}), ...(plan.apply.includes('logLevel') ? { logLevel: next.logLevel } : {}), ...(plan.apply.includes('tls') ? { tls: next.tls } : {}), ...(plan.apply.includes('alerts') ? { alerts: next.alerts } : {}), ...(plan.apply.includes('historyRetention') ? { historyRetention: next.historyRetention } : {}) };
        logger.info({ applied: plan.apply, config: next.configFile }, 'config reloaded');
        if (plan.ignored.length > 0) logger.warn({ ignored: plan.ignored }, `config reload: ${plan.ignored.join(', ')} changed but take a restart; the running values stay`);
        return { ok: true, ...plan };
      } catch (err) {
        const problem = (err as Error).message;
        logger.error({ problem }, 'config reload refused; the running config stays');
        return { ok: false, problem };
      }
    };
    return { daemon, gpuHealth: gpuHealthHooks(daemon), addresses, samples, reload, close };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}

/** The config's alert rules resolved over the defaults; a bad one throws naming the file and the entry. */
function alertSettingsOf(config: DaemonConfig): AlertSettings {
  try {
    return alertSettings(config.alerts);
  } catch (err) {
    throw new GsError(ErrorCodes.invalidArgument, `config file ${config.configFile ?? '(none)'}: ${(err as Error).message}`, { cause: err });
  }
}

/** A listen address as the lock file names it before it is bound (a TCP port 0 is known after). */
function listenName(address: ListenAddress): string {
  return address.kind === 'unix' ? address.path : `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
}

/** The TLS files' contents, read now so that an unreadable one stops the start saying which. */
function tlsContents(config: DaemonConfig): { cert: Buffer; key: Buffer; ca?: Buffer } | null {
  if (config.tls === null) return null;
  const read = (what: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (cause) {
      throw new GsError(ErrorCodes.invalidArgument, `tls: cannot read the ${what} ${path}: ${(cause as Error).message}`, { cause });
    }
  };
  const { cert, key, clientCa } = config.tls;
  return { cert: read('certificate', cert), key: read('key', key), ...(clientCa !== null ? { ca: read('client CA', clientCa) } : {}) };
}

async function listen(app: ApiApp, address: ListenAddress, sockets: string[], tls: boolean): Promise<string> {
  if (address.kind === 'tcp') {
    await app.listen({ host: address.host, port: address.port });
    const a = app.server.address();
    const port = typeof a === 'object' && a !== null ? a.port : address.port;
    return `${tls ? 'https' : 'http'}://${address.host.includes(':') ? `[${address.host}]` : address.host}:${port}`;
  }
  const dir = dirname(address.path);
  ensurePrivateDir(dir);
  if (existsSync(address.path)) {
    if (await answers(address.path)) throw new GsError(ErrorCodes.conflict, `another daemon already listens on ${address.path}`);
    unlinkSync(address.path); // left behind by a daemon that crashed
  }
  await app.listen({ path: address.path });
  sockets.push(address.path);
  chmodSync(address.path, 0o600);
  return address.path;
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
