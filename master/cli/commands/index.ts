import type { Command } from 'commander';
import { registerVersion } from './version';

/** Every `d8` subcommand; add one line per command module. */
export const COMMANDS: Array<(program: Command) => void> = [
  registerVersion,
];
