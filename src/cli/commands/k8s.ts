import type { Command } from 'commander';

/** `gpushare k8s ...`: the Kubernetes components (deploy/ runs them); not clients of a daemon. */
export function registerK8s(program: Command): void {
  const k8s = program.command('k8s').description('Kubernetes components: the cluster controller (scheduler extender + webhook)');
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
