/** The `d8` command. Each subcommand lives in its own module under commands/. */
import { Command } from 'commander';
import { COMMANDS } from './commands';

export function buildProgram(): Command {
  const program = new Command('d8')
    .description('D8 Fleet: provision and supervise a small self-hosted fleet')
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: true })
    // A parent's options end at its subcommand's name (`d8 master install --stack` is install's).
    .enablePositionalOptions();
  for (const register of COMMANDS) register(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}
