import { Command, Option } from 'commander';
import type { Store } from '../../master/store';
import { fail, withFleet, withStore, DEFAULT_STACK } from '../fleet-context';
import { MONTH_RE } from '../../core/approval';
import { spendReport, spendText } from '../../master/requests/spend-report';
import { monthOf } from '../../master/requests/month';
import { RequestError } from '../../master/store/requests';
import { LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, ListRequestsQuerySchema, PRIORITIES, REQUEST_STATUSES, REQUEST_TYPES, type HumanRequest, type RequestStatus } from '../../core/requests';

function line(r: HumanRequest): string {
  const cost = r.estimated_cost !== null ? ` · ${r.estimated_cost}` : '';
  return `${r.id}  ${r.status.padEnd(9)}  ${r.priority.padEnd(6)}  ${r.type.padEnd(18)}  ${r.title}${cost}`;
}

function details(r: HumanRequest): string {
  return [
    `${r.id} · ${r.type} · ${r.status} · priority ${r.priority}`,
    r.title,
    r.description ? `\n${r.description}\n` : '',
    r.estimated_cost !== null ? `estimated cost: ${r.estimated_cost}` : '',
    `created by ${r.created_by} at ${r.created_at}; updated ${r.updated_at}${r.resolved_at ? `; resolved ${r.resolved_at}` : ''}`,
    r.action ? `on approval: ${r.action.kind} ${r.action.slave}${r.action.target_commit ? ` to ${r.action.target_commit.slice(0, 7)}` : ''}` : '',
    r.notes ? `notes:\n${r.notes}` : '',
  ].filter(Boolean).join('\n') + '\n';
}

/** Runs `fn` on the store and prints its result; an unknown request exits 4. */
function withRequests(json: boolean | undefined, fn: (s: Store) => HumanRequest | HumanRequest[]): void {
  withStore((store) => {
    const r = fn(store);
    if (json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else if (Array.isArray(r)) process.stdout.write(r.length ? r.map(line).join('\n') + '\n' : 'no requests\n');
    else process.stdout.write(details(r));
  }, (err) => (err instanceof RequestError && err.code === 'not_found' ? 4 : 1));
}

export function registerRequests(program: Command): void {
  const req = program.command('requests').description('human requests: decisions and chores the master (or you) asked a person for');
  req.command('list', { isDefault: true })
    .description('list requests, newest first (default: the open ones, PENDING and POSTPONED)')
    .option('--all', 'every request')
    .addOption(new Option('--status <status>', 'only this status').choices([...REQUEST_STATUSES]))
    .option('--limit <n>', `at most this many, newest first (1 to ${LIST_LIMIT_MAX})`, String(LIST_LIMIT_DEFAULT))
    .option('--before <id>', 'only requests filed before this one (the next page: the id the previous one named)')
    .option('--json', 'JSON output')
    .action((o: { all?: boolean; status?: RequestStatus; limit: string; before?: string; json?: boolean }) =>
      withRequests(o.json, (s) => {
        const q = ListRequestsQuerySchema.safeParse({ limit: o.limit, ...(o.before !== undefined ? { before: o.before } : {}) });
        if (!q.success) throw new RequestError(`--${String(q.error.issues[0].path[0])} ${q.error.issues[0].message}`, 'invalid');
        const p = s.requests.page({ ...(o.status ? { status: o.status } : o.all ? {} : { open: true }), limit: q.data.limit, ...(q.data.before ? { before: q.data.before } : {}) });
        if (p.next_before) process.stderr.write(`(newest first; older ones: d8 requests list${o.status ? ` --status ${o.status}` : o.all ? ' --all' : ''} --before ${p.next_before})\n`);
        return p.requests;
      }));
  req.command('show <id>').description('show one request').option('--json', 'JSON output')
    .action((id: string, o: { json?: boolean }) => withRequests(o.json, (s) => s.requests.get(id)));
  req.command('create')
    .description('file a new request (PENDING); it is announced like any alert')
    .addOption(new Option('--type <type>', 'request type').choices([...REQUEST_TYPES]).makeOptionMandatory())
    .requiredOption('--title <title>', 'one line')
    .option('--description <text>', 'details', '')
    .addOption(new Option('--priority <p>', 'priority').choices([...PRIORITIES]).default('normal'))
    .option('--cost <amount>', 'estimated cost')
    .option('--created-by <who>', 'who asks', 'cli')
    .option('--json', 'JSON output')
    .action((o: { type: string; title: string; description: string; priority: string; cost?: string; createdBy: string; json?: boolean }) =>
      withRequests(o.json, (s) => {
        const cost = o.cost === undefined ? null : Number(o.cost);
        if (cost !== null && !(cost >= 0)) throw new RequestError(`--cost must be a non-negative number, not "${o.cost}"`, 'invalid');
        return s.requests.create({ type: o.type as never, title: o.title, description: o.description, priority: o.priority as never, estimated_cost: cost, created_by: o.createdBy });
      }));
  req.command('spend')
    .description('approved costs per request type in a month, against the monthly budgets (d8:budgets)')
    .option('--month <YYYY-MM>', 'the month (UTC; default: this one)')
    .option('-s, --stack <stack>', 'stack whose d8:budgets to compare with', DEFAULT_STACK)
    .option('--repo <dir>', 'repository with the stack files (default: this checkout)')
    .option('--json', 'JSON output')
    .action((o: { month?: string; stack: string; repo?: string; json?: boolean }) => {
      if (o.month !== undefined && !MONTH_RE.test(o.month)) return fail(new Error(`--month must look like 2026-11, not "${o.month}"`), 1);
      return withFleet({ stack: o.stack, repo: o.repo }, (ctx) => {
        const r = spendReport(ctx.store.spend, ctx.config.budgets ?? {}, o.month ?? monthOf(Date.now()));
        process.stdout.write(o.json ? JSON.stringify(r, null, 2) + '\n' : spendText(r) + '\n');
      });
    });
  const decide = (name: 'approve' | 'reject' | 'postpone' | 'complete', what: string, arg: string) =>
    req.command(`${name} <id> [${arg}...]`).description(what).option('--json', 'JSON output')
      .action((id: string, words: string[], o: { json?: boolean }) => withRequests(o.json, (s) => s.requests[name](id, words.join(' ') || undefined)));
  decide('approve', 'approve a PENDING/POSTPONED request (an update request then runs the update)', 'note');
  decide('reject', 'reject a request', 'reason');
  decide('postpone', 'postpone a request', 'note');
  decide('complete', 'mark an APPROVED request done', 'note');
}
