/**
 * Asking a person to decide: an update to approve, a slave ahead of or diverged from the master, an
 * update the master cannot run without an SSH key. One request per (slave, master commit): the
 * record remembers it, and a request already filed for that commit in any status (a rejection is an
 * answer too) is reused instead of filing another.
 */
import type { SlaveConfig } from '../../../core/stack-config';
import { shortCommit } from '../../../core/version-info';
import type { CreateRequestInput, HumanRequest } from '../../../core/requests';
import type { SlaveRecord } from '../../store/slaves';
import { fixFor } from '../../notify/fix-hints';
import type { AskAbout } from '../policy';
import type { ActionContext } from './context';

export function askHuman(ctx: ActionContext, slave: SlaveConfig, rec: SlaveRecord, about: AskAbout, targetCommit: string): HumanRequest {
  return ctx.store.db.transaction((): HumanRequest => {
    const req = ctx.store.requests.findByAction('update', slave.name, targetCommit) ?? ctx.store.requests.create(requestFor(ctx, slave, rec, about, targetCommit));
    ctx.store.slaves.patch(ctx.stack, slave.name, { update_target: targetCommit, update_request_id: req.id });
    return req;
  }).immediate();
}

function requestFor(ctx: ActionContext, slave: SlaveConfig, rec: SlaveRecord, about: AskAbout, master: string): CreateRequestInput {
  const action = { kind: 'update' as const, slave: slave.name, stack: ctx.stack, target_commit: master };
  const from = shortCommit(rec.commit);
  const to = shortCommit(master);
  switch (about) {
    case 'approve_update':
      return {
        type: 'INFRASTRUCTURE', priority: 'normal', created_by: 'master', action,
        title: `Update ${slave.name} from ${from} to ${to}?`,
        description: `${slave.name} is behind the master (${from} -> ${to}). Approving redeploys it with the ${ctx.deploys.engine} engine. ` +
          `Rejecting keeps it at ${from} until the master's commit changes.`,
      };
    case 'update_needs_ssh':
      return {
        type: 'INFRASTRUCTURE', priority: 'normal', created_by: 'master', action,
        title: `${slave.name} is behind (${from} -> ${to}) and the master cannot update it: no SSH key`,
        description: `${fixFor('no_ssh_key', slave.name)} Then approve this request (or run \`d8 update ${slave.name}\`) to update it.`,
      };
    case 'ahead':
    case 'diverged':
      return {
        type: 'STRATEGIC_DECISION', priority: 'normal', created_by: 'master', action,
        title: `${slave.name} is ${about} of the master (${from} vs ${to})`,
        description: `The master never downgrades a slave automatically. Update the master's checkout, or approve to redeploy ${slave.name} with the master's commit ${to}.`,
      };
  }
}
