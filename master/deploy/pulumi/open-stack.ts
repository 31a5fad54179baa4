/**
 * Opening the stack the way a `pulumi up` user expects: a stack that exists is selected, one that
 * was never initialised is created on the logged-in backend (with the project's Pulumi.<stack>.yaml
 * as its config). When that cannot work, one line says exactly what to run.
 */
import { LocalWorkspace, type Stack } from '@pulumi/pulumi/automation';
import { DeployError } from '../../../core/deploy-result';
import { findPulumiCli } from '../select';

export async function openStack(stackName: string, workDir: string, env: NodeJS.ProcessEnv = process.env): Promise<Stack> {
  if (!findPulumiCli(env)) {
    throw new DeployError('no pulumi CLI on PATH: install Pulumi (https://www.pulumi.com/docs/install/), or deploy with --engine direct', 'config');
  }
  try {
    return await LocalWorkspace.createOrSelectStack({ stackName, workDir });
  } catch (err) {
    const ws = await LocalWorkspace.create({ workDir }).catch(() => null);
    const who = ws ? await ws.whoAmI().catch(() => null) : null;
    if (!who) {
      throw new DeployError(`stack ${stackName}: no Pulumi backend is logged in: run \`pulumi login --local\` (state in ~/.pulumi) or ` +
        `\`pulumi login file://<dir>\`, then \`pulumi stack init ${stackName} --cwd ${workDir}\``, 'config');
    }
    const first = ((err as Error).message ?? '').split('\n').map((l) => l.trim()).find((l) => /^error:/i.test(l)) ?? 'see `pulumi stack ls`';
    throw new DeployError(`stack ${stackName} cannot be selected or created on ${who.url ?? 'the backend'} (${first}): ` +
      `run \`pulumi stack init ${stackName} --cwd ${workDir}\` (with PULUMI_CONFIG_PASSPHRASE set for a passphrase secrets provider)`, 'config');
  }
}
