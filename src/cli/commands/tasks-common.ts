import { Option, type Command } from 'commander';
import type { Client } from '../client.js';

/** Adds `--host` (GPUSHARE_HOST) to a command that talks to the daemon. */
export function addHostOption(cmd: Command): Command {
  return cmd
    .addOption(new Option('--host <socket|url>', 'the daemon: a Unix socket path or http(s)://host:port (GPUSHARE_TOKEN for TCP)').env('GPUSHARE_HOST'))
    .addOption(new Option('--ca-file <file>', "PEM CA that signed an https:// daemon's certificate (default: the system's CAs)").env('GPUSHARE_CA_FILE'));
}

export async function clientFor(flags: { readonly host?: string; readonly caFile?: string }): Promise<Client> {
  // Loaded when a command talks to the daemon, so that `--help` and `--version` skip node:http.
  const { Client, resolveTarget } = await import('../client.js');
  return new Client(resolveTarget(flags.host, process.env, flags.caFile));
}
