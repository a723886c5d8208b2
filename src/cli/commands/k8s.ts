import { Option, type Command } from 'commander';
import { BACKEND_CHOICES } from '../options.js';

/** `gpushare k8s`: the Kubernetes components (deploy/ runs them): the node agent and the cluster controller; not clients of a daemon. */
export function registerK8s(program: Command): void {
  const k8s = program.command('k8s').description('run gpushare\'s Kubernetes components (DaemonSet node agent, cluster controller: scheduler extender + webhook)');
  k8s
    .command('node')
    .description('the node agent (one DaemonSet pod per GPU node): publishes the GPUs (ResourceSlices and the node-gpus annotation), serves the DRA kubelet plugin, suspends and resumes pods for preemption')
    .option('--config <file>', 'JSON config file (flags win over it; docs/kubernetes.md "Node agent")')
    .addOption(new Option('--node-name <name>', 'this node\'s name (a DaemonSet passes spec.nodeName)').env('NODE_NAME'))
    .option('--kubeconfig <file>', 'a kubeconfig file (default: the pod\'s service account, in-cluster)')
    .addOption(new Option('--backend <kind>', 'where GPUs come from').choices(BACKEND_CHOICES))
    .option('--simulate <fleet>', 'simulate GPUs: "2xH100-80GB" or a file (tests and demos)')
    .addOption(new Option('--layout <layout>', 'ResourceSlice layout: consumable (KEP-5075 consumable capacity) or fixed (counters and partitions)').choices(['consumable', 'fixed']))
    .option('--health-listen <address>', 'probe endpoint (/healthz, /readyz): host:port or a Unix socket path (default 0.0.0.0:8082)')
    .option('--metrics-listen <address>', 'GET /metrics of the node\'s GPUs and pods\' slices: host:port, a Unix socket path, or off (default 0.0.0.0:9394)')
    .option('--library <file>', 'libgpushare.so to install on the host for containers (default /usr/local/gpushare/lib/libgpushare.so)')
    .option('--plugin-dir <dir>', 'the kubelet\'s plugins directory (default /var/lib/kubelet/plugins)')
    .option('--registry-dir <dir>', 'the kubelet\'s plugin registry (default /var/lib/kubelet/plugins_registry)')
    .option('--cdi-dir <dir>', 'where CDI specs go (default /var/run/cdi)')
    .addOption(new Option('--log-level <level>', 'log level of the JSON log on stderr').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .addHelpText('after', `
Examples:
  gpushare k8s node --config /etc/gpushare/agent.json          in the DaemonSet (NODE_NAME from the downward API)
  gpushare k8s node --node-name gpu-7 --kubeconfig ~/.kube/config --simulate 2xH100-80GB --plugin-dir /tmp/p --registry-dir /tmp/r --cdi-dir /tmp/cdi
`)
    .action(async (flags: Record<string, string | undefined>) => {
      // The agent (client-node, gRPC, the GPU backend) loads only when it runs.
      const { runNodeAgent } = await import('../../k8s/agent/run.js');
      await runNodeAgent(flags);
    });
  k8s
    .command('downgrade-state')
    .description('rewrite the node agent\'s state files in the plain layout gpushare before the slotted files (session 23 and earlier) reads, for a downgrade; run with the agent stopped (a running one holds the files\' lock: refused)')
    .argument('[files...]', 'state files (default: the DRA plugin\'s checkpoint and the device plugin\'s ledger at their default places, those that exist)')
    .addHelpText('after', `
Examples:
  gpushare k8s downgrade-state                                                 the default files, before installing the older agent
  gpushare k8s downgrade-state /var/lib/kubelet/plugins/gpu.gpushare.io/checkpoint.json
`)
    .action(async (files: string[]) => {
      const { downgradeState } = await import('../../k8s/agent/downgrade-state.js');
      for (const line of downgradeState(files)) process.stdout.write(`${line}\n`);
    });
  k8s
    .command('controller')
    .description('serve the scheduler extender (filter/prioritize/bind/preempt) and the mutating webhook over HTTPS, watching the cluster\'s nodes and pods')
    .option('--config <file>', 'JSON config file (docs/kubernetes.md, "Deploying": listen, tls, extender, webhook, suspend, schedulerName)')
    .option('--tls-cert <file>', 'PEM certificate (chain) for the HTTPS listener; re-read when it changes (config: tls.cert)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert (config: tls.key)')
    .option('--port <n>', 'HTTPS port (config: listen.port; default 9443)')
    .option('--extender-port <n>', 'also serve the extender\'s verbs over plain HTTP on this port (config: extender.plainHttpPort)')
    .option('--scheduler-name <name>', 'the scheduler profile GPU pods are routed to (config: schedulerName; default gpushare-scheduler)')
    .option('--kubeconfig <file>', 'kubeconfig to use (default: in-cluster service account, else $KUBECONFIG or ~/.kube/config)')
    .addHelpText('after', `
Examples:
  gpushare k8s controller --config /etc/gpushare/controller.json
  gpushare k8s controller --tls-cert tls.crt --tls-key tls.key --kubeconfig ~/.kube/config
`)
    .action(async (flags: Readonly<Record<string, string | undefined>>) => {
      // The flags' names and types are src/k8s/controller/config.ts's ControllerFlags (the CLI may not import it statically).
      // The controller's side, loaded here only: no other command pays for client-node and fastify.
      const { runControllerCommand } = await import('../../k8s/controller/command.js');
      await runControllerCommand(flags);
    });
}
