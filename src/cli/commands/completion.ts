import { Argument, type Command } from 'commander';
import { completionScript, SHELLS, type Shell } from '../output/completion.js';

export function registerCompletion(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script for bash, zsh or fish (commands, options, their choices, task ids)')
    .addArgument(new Argument('<shell>', 'the shell to complete in').choices(SHELLS))
    .addHelpText('after', `
Load it in this shell, or install it for every new one:
  source <(gpushare completion bash)     ~/.local/share/bash-completion/completions/gpushare
  source <(gpushare completion zsh)      a file _gpushare on $fpath
  gpushare completion fish | source      ~/.config/fish/completions/gpushare.fish
`)
    .action((shell: Shell) => {
      // The whole tree is registered for this command (index.ts commandsFor: needsAll).
      process.stdout.write(completionScript(shell, program));
    });
}
