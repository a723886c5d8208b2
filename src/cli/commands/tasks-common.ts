import { Option, type Command } from 'commander';
import { Client, resolveTarget } from '../client.js';

/** Adds `--host` (GPUSHARE_HOST) to a command that talks to the daemon. */
export function addHostOption(cmd: Command): Command {
  return cmd.addOption(new Option('--host <socket|url>', 'the daemon: a Unix socket path or http(s)://host:port (GPUSHARE_TOKEN for TCP)').env('GPUSHARE_HOST'));
}

export function clientFor(flags: { readonly host?: string }): Client {
  return new Client(resolveTarget(flags.host));
}
