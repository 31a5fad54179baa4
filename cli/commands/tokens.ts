/** `d8 tokens create|list|revoke`: API tokens for programs that use the master's requests API. */
import fs from 'fs';
import { Command, Option } from 'commander';
import { ApiTokenError } from '../../master/store/api-tokens';
import { API_SCOPES, SCOPE_MEANING, type ApiTokenInfo } from '../../core/api-tokens';
import { withStore } from '../fleet-context';

function row(t: ApiTokenInfo): string {
  return `${t.id}  ${t.name.padEnd(20)}  ${t.scopes.join(',').padEnd(30)}  created ${t.created_at}  ${t.revoked_at ? `revoked ${t.revoked_at}` : `last used ${t.last_used_at ?? 'never'}`}`;
}

/** An unknown token exits 4, a bad name or scope 1. */
const exitCode = (err: unknown): number => (err instanceof ApiTokenError && err.code === 'not_found' ? 4 : 1);

export function registerTokens(program: Command): void {
  const tokens = program.command('tokens').description('API tokens for programs that file or decide human requests over the master\'s HTTP API');
  tokens.command('create')
    .description('make a token; it is printed once (or written to --out) and kept only as a hash')
    .requiredOption('--name <app>', 'who uses it (letters, digits, . _ -); shown as the author of its requests')
    .addOption(new Option('--scope <scope...>', 'what it may do (repeatable)').choices([...API_SCOPES]).default(['requests:write']))
    .option('--out <file>', 'write the token to this file (mode 0600) instead of printing it')
    .option('--json', 'JSON output (with the token, unless --out)')
    .addHelpText('after', `
Scopes:
${API_SCOPES.map((s) => `  ${s.padEnd(16)} ${SCOPE_MEANING[s]}`).join('\n')}

The program sends it as "Authorization: Bearer <token>" to the dashboard's address (d8:dashboard,
default http://127.0.0.1:7500), e.g. with the package's RequestsClient. Revoke it with
\`d8 tokens revoke <name>\`.`)
    .action((o: { name: string; scope: string[]; out?: string; json?: boolean }) => withStore((s) => {
      const t = s.tokens.create(o.name, o.scope);
      const { token, ...info } = t;
      if (o.out) {
        fs.writeFileSync(o.out, token + '\n', { mode: 0o600 });
        fs.chmodSync(o.out, 0o600);
      }
      if (o.json) {
        process.stdout.write(JSON.stringify(o.out ? { ...info, file: o.out } : t, null, 2) + '\n');
        return;
      }
      process.stdout.write(`token ${info.id} for ${info.name} (${info.scopes.join(', ')})${o.out ? ` written to ${o.out} (mode 0600)` : ''}\n`);
      if (!o.out) {
        process.stderr.write('This is the only time the token is shown; store it now:\n');
        process.stdout.write(`${token}\n`);
      }
    }, exitCode));
  tokens.command('list')
    .description('the live tokens (never the tokens themselves)')
    .option('--all', 'revoked ones too')
    .option('--json', 'JSON output')
    .action((o: { all?: boolean; json?: boolean }) => withStore((s) => {
      const list = s.tokens.list({ all: o.all });
      if (o.json) process.stdout.write(JSON.stringify(list, null, 2) + '\n');
      else process.stdout.write(list.length ? list.map(row).join('\n') + '\n' : 'no API tokens (d8 tokens create --name <app>)\n');
    }, exitCode));
  tokens.command('revoke <id-or-name>')
    .description('revoke a token now: its next request gets 401')
    .option('--json', 'JSON output')
    .action((idOrName: string, o: { json?: boolean }) => withStore((s) => {
      const t = s.tokens.revoke(idOrName);
      process.stdout.write(o.json ? JSON.stringify(t, null, 2) + '\n' : `revoked ${t.id} (${t.name})\n`);
    }, exitCode));
}
