import type { Command } from 'commander';
import { findSlave, loadFleetConfig, type FleetConfig, type SlaveConfig } from '../../core/stack-config';
import { AgentClient } from '../../master/agent-client';
import { slaveTokens } from '../../master/agent-tokens';
import { openStore } from '../../master/store';
import { rotateSlaveToken, type RotationResult } from '../../master/token-rotation';
import { rotateSwarmTokens } from '../../master/swarm-token-rotation';
import { fail } from '../fleet-context';
import { resolveStackDir } from './up';

interface RotateOptions { stack: string; dir?: string; all?: boolean; json?: boolean; restart?: boolean }

const swarmRefusal = (config: FleetConfig): string => `stack ${config.stack} is in swarm mode (d8:swarm): a slave's token is its service's docker secret, ` +
  'and a new secret restarts the slave\'s agent (its checks fail for the seconds of the restart; no command is refused): ' +
  'pass --restart to rotate that way (a d8 up through Pulumi of the swarm\'s services)';

export function registerRotateToken(program: Command): void {
  program
    .command('rotate-token [slave]')
    .description('give a slave\'s agent (or every agent, --all) a new token of its own, without a refused check or command in between')
    .option('-s, --stack <stack>', 'stack (Pulumi.<stack>.yaml)', 'dev')
    .option('--dir <dir>', 'directory with Pulumi.<stack>.yaml (default: the current directory, else the repository)')
    .option('--all', 'every slave of the stack')
    .option('--json', 'print [{ slave, ok, replaced, error }] as JSON')
    .option('--restart', 'swarm mode: rotate by giving each slave\'s service a new docker secret, which restarts its agent')
    .addHelpText('after', `
The master asks the agent (over its API, authorized by the current token) to accept a new token as
well, switches to it, then has the agent drop the old one; a running \`d8 master\` follows at once. The
tokens live in D8_HOME/tokens/<stack>/ (mode 0600); an agent that still uses the fleet token
(d8:agentToken) gets its own. The agent must be up.
Swarm mode (d8:swarm): the token is the slave's service's docker secret, which only a deploy changes,
and the new secret restarts the slave's agent, so a swarm stack is refused unless --restart accepts
that: the new token is staged (the master presents the old one, then the new one, until the agent
accepts the new one),
then a Pulumi deploy of the swarm's services (as d8 up --engine pulumi) puts it in place and waits for
every slave's service to converge. Exit status: 0 all rotated, 1 any failed, 2 usage.

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
        if (config.swarm && !o.restart) throw new Error(swarmRefusal(config));
        if (!config.swarm && o.restart) throw new Error(`--restart is for swarm mode only; stack ${config.stack} rotates without a restart`);
      } catch (err) {
        return fail(err, 2);
      }
      if (config.swarm) {
        const results = await rotateSwarmTokens(config, resolveStackDir(o.stack, o.dir), slaves, slaveTokens(config), {
          say: (line) => { if (!o.json) process.stderr.write(`${line}\n`); },
        });
        reportSwarm(results, !!o.json);
        return;
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

function reportSwarm(results: RotationResult[], json: boolean): void {
  if (json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  else for (const r of results) process.stdout.write(r.ok ? `${r.slave}: rotated (its service has a new secret; the agent restarted with it)\n` : `${r.error}\n`);
  if (results.some((r) => !r.ok)) process.exitCode = 1;
}
