import { Option, type Command } from 'commander';
import { BACKEND_CHOICES } from '../options.js';

interface ServeFlags {
  readonly config?: string;
  readonly stateDir?: string;
  readonly listen?: string[];
  readonly backend?: string;
  readonly simulate?: string;
  readonly policy?: string;
  readonly logLevel?: string;
  readonly preemption?: string;
  readonly swap?: boolean;
  readonly overcommit?: string;
  readonly timeshareQuantum?: string;
  readonly mps?: string;
  readonly sandbox?: string;
  readonly passEnv?: string[];
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly tlsClientCa?: string;
  readonly insecure?: boolean;
  readonly daemonNice?: string;
  readonly taskCpuWeight?: string;
  readonly system?: boolean;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the node daemon: queue, place, start and supervise GPU tasks; API on a Unix socket')
    .option('--system', "the machine service's paths whoever runs it, the environment's XDG variables ignored: /etc/gpushare/config.json, /var/lib/gpushare, /run/gpushare/gpushare.sock (a service under its own user: systemd User= with StateDirectory= and RuntimeDirectory=)")
    .option('--config <file>', 'config file (default $XDG_CONFIG_HOME/gpushare/config.json, if it exists)')
    .option('--state-dir <dir>', 'state: database, task logs, regions (default $XDG_STATE_HOME/gpushare)')
    .option('--listen <address...>', 'Unix socket path, or host:port for TCP (needs tokens in the config; TLS or --insecure unless loopback); repeatable')
    .option('--tls-cert <file>', 'PEM certificate (chain) for the TCP listeners: they speak HTTPS (config: tls.cert)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert (config: tls.key)')
    .option('--tls-client-ca <file>', 'require client certificates signed by this PEM CA too, besides bearer tokens (config: tls.clientCa)')
    .option('--insecure', 'allow plain HTTP on a TCP address that is not loopback: tokens cross the network in clear (config: allowInsecureTcp)')
    .option('--daemon-nice <nice>', "the daemon's CPU priority over its tasks: auto (nice -10 where permitted; default), off, or -20..19 (config: daemonNice)")
    .option('--task-cpu-weight <weight>', "the CPU weight of everything the daemon starts (spawner, wrappers, tasks) in a cgroup of their own, against 100 for others: auto (10 where permitted; default), off, or 1..10000 (config: taskCpuWeight)")
    .addOption(new Option('--backend <kind>', 'where GPUs come from').choices(BACKEND_CHOICES).env('GPUSHARE_BACKEND'))
    .addOption(new Option('--simulate <fleet>', 'simulate GPUs: "1xH100-80GB", "2xH100-80GB,1xA100-40GB" or a file').env('GPUSHARE_SIMULATE'))
    .option('--policy <name>', 'scheduling policy: binpack (default), spread, bestfit, topology, fragmentation, random')
    .option('--swap', "slice swap (the default): tasks' GPU memory can move to host memory and back at PCIe speed (libgpushare); suspend, resume and preemption swap first, the CUDA checkpoint API as the fallback (config: swap)")
    .option('--no-swap', 'slice swap off: tasks allocate as without it, suspension goes through the CUDA checkpoint API only (config: "swap": false)')
    .option('--overcommit <ratio>', 'memory overcommit (with swap on): each GPU may promise ratio x its memory (1-4); idle slices are swapped to host memory when the real use would not fit, and slices that cannot all fit take turns (config: overcommit.gpus, per GPU)')
    .option('--timeshare-quantum <duration>', 'under --overcommit, how long a slice others wait for keeps the GPU before they swap turns, e.g. 30s (default; config: overcommit.timeshareQuantumSeconds)')
    .addOption(new Option('--preemption <policy>', 'what a higher-priority task that does not fit does to lower-priority ones: suspend them (default), suspend-then-kill (kill those that cannot be suspended), off').choices(['suspend', 'suspend-then-kill', 'off']))
    .addOption(
      new Option('--mps <mode>', 'an MPS control daemon for sm-partition tasks, so partitions run at once: auto (default: on real GPUs when nvidia-cuda-mps-control is on PATH), on, off').choices([
        'auto',
        'on',
        'off',
      ]),
    )
    .addOption(new Option('--sandbox <mode>', 'tasks as their tenant\'s own unprivileged user, in a cgroup each: auto (default: when the daemon is root), on (refuse to start otherwise), off').choices(['auto', 'on', 'off']))
    .option('--pass-env <name...>', 'daemon environment variables tasks get (nothing else of the daemon\'s environment reaches them)')
    .addOption(new Option('--log-level <level>', 'log level of the JSON log on stderr').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .addHelpText('after', `
Examples:
  gpushare serve                                        defaults: socket in $XDG_RUNTIME_DIR/gpushare/, real GPUs if NVML works
  gpushare serve --backend simulated --simulate 1xH100-80GB
  gpushare serve --state-dir /tmp/gs --listen /tmp/gs/api.sock
  gpushare serve --listen 0.0.0.0:7070 --config c.json --tls-cert cert.pem --tls-key key.pem
  gpushare serve --mps on                               sm-partition tasks run side by side under the daemon's own MPS
  gpushare serve --system                               the system paths, also as a non-root service user
`)
    .action(async (flags: ServeFlags) => {
      // The composition root (src/app), loaded here so that every other command starts without
      // fastify, pino and SQLite; the one import of the daemon's side the CLI has (eslint.config.js).
      const { serveWithFlags } = await import('../../app/serve.js');
      const running = await serveWithFlags({ ...flags, listen: flags.listen });
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await running.close();
    });
}
