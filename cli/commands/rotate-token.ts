import type { Command } from 'commander';
import { findSlave, loadFleetConfig, type SlaveConfig } from '../../core/stack-config';
import { AgentClient } from '../../master/agent-client';
import { slaveTokens } from '../../master/agent-tokens';
import { openStore } from '../../master/store';
import { rotateSlaveToken } from '../../master/token-rotation';
import { fail } from '../fleet-context';
import { resolveStackDir } from './up';

interface RotateOptions { stack: string; dir?: string; all?: boolean; json?: boolean }

export function registerRotateToken(program: Command): void {
  program
    .command('rotate-token [slave]')
    .description('give a slave\'s agent (or every agent, --all) a new token of its own, without a refused check or command in between')
    .option('-s, --stack <stack>', 'stack (Pulumi.<stack>.yaml)', 'dev')
    .option('--dir <dir>', 'directory with Pulumi.<stack>.yaml (default: the current directory, else the repository)')
    .option('--all', 'every slave of the stack')
    .option('--json', 'print [{ slave, ok, replaced, error }] as JSON')
    .addHelpText('after', `
The master asks the agent (over its API, authorized by the current token) to accept a new token as
well, switches to it, then has the agent drop the old one; a running \`d8 master\` follows at once. The
tokens live in D8_HOME/tokens/<stack>/ (mode 0600); an agent that still uses the fleet token
(d8:agentToken) gets its own. The agent must be up. Not for swarm mode, whose agents share the fleet
token: change d8:agentToken and run d8 up. Exit status: 0 all rotated, 1 any failed, 2 usage.

Examples:
  d8 rotate-token desktop --stack prod
  d8 rotate-token --all --stack prod --json`)
    .action(async (name: string | undefined, o: RotateOptions) => {
      let slaves: SlaveConfig[];
      let config;
      try {
        if (!!name === !!o.all) throw new Error('name one slave, or pass --all (not both)');
        config = loadFleetConfig(resolveStackDir(o.stack, o.dir), o.stack, process.env, { requireSshKey: false });
        slaves = o.all ? config.slaves : [findSlave(config, name!)];
        if (config.swarm) {
          throw new Error(`stack ${config.stack} is in swarm mode (d8:swarm): its agents share the fleet token (one docker secret); ` +
            'rotate it by setting a new d8:agentToken (or D8_AGENT_TOKEN) and running d8 up');
        }
      } catch (err) {
        return fail(err, 2);
      }
      const store = openStore();
      const client = new AgentClient({ deadlineMs: 10_000, pins: store.pins.lookup(config.stack) });
      const tokens = slaveTokens(config);
      const results = [];
      try {
        for (const s of slaves) {
          const r = await rotateSlaveToken(config, s, client, tokens);
          results.push(r);
          if (!o.json) {
            process.stdout.write(r.ok ? `${s.name}: rotated (${r.replaced === 'fleet' ? 'it had the fleet token; it now has its own' : 'new token of its own'})\n` : `${r.error}\n`);
          }
        }
      } finally {
        client.close();
        store.close();
      }
      if (o.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
      if (results.some((r) => !r.ok)) process.exitCode = 1;
    });
}
