/** The bot's commands: one list feeds setMyCommands (the menu in the Telegram app) and /help. */
export interface MenuEntry { command: string; args: string; description: string }

export const MENU: MenuEntry[] = [
  { command: 'status', args: '', description: 'Fleet status: every slave, its state and commit' },
  { command: 'retry', args: '<slave>', description: 'Redeploy a slave now (recovery)' },
  { command: 'update', args: '<slave>', description: "Update a slave to the master's commit" },
  { command: 'rollout', args: '[pause|resume|abort]', description: 'The rollout of the master\'s commit, or pause/resume/abort it' },
  { command: 'solicitudes', args: '', description: 'Open human requests' },
  { command: 'aprobar', args: '<id>', description: 'Approve a request (runs its update or retry)' },
  { command: 'rechazar', args: '<id> [motivo]', description: 'Reject a request, with an optional reason' },
  { command: 'posponer', args: '<id>', description: 'Postpone a request' },
  { command: 'completar', args: '<id> [nota]', description: 'Mark an approved request done, with a note' },
  { command: 'gastos', args: '[YYYY-MM]', description: 'Approved spend per request type against the budgets' },
  { command: 'help', args: '', description: 'What this bot understands' },
];

export function botCommands(): Array<{ command: string; description: string }> {
  return MENU.map((m) => ({ command: m.command, description: m.args ? `${m.args} — ${m.description}` : m.description }));
}

export function helpText(): string {
  return [
    'D8 Fleet bot. Commands:',
    ...MENU.map((m) => `/${m.command}${m.args ? ' ' + m.args : ''} — ${m.description}`),
    '',
    'Requests also carry ✅ Approve / ❌ Reject buttons that do the same as /aprobar and /rechazar.',
  ].join('\n');
}
