/** A rollout as people and scripts see it (`d8 rollout status`, `d8 status`, Telegram): pure. */
import type { Rollout } from '../../core/rollout';
import { shortCommit } from '../../core/version-info';

export interface RolloutView {
  id: number;
  commit: string;
  status: Rollout['status'];
  stage: number;
  stages: number;
  policy: Rollout['policy'];
  request_id: string | null;
  created_at: string;
  updated_at: string;
  done: string[];
  in_progress: string[];
  pending: string[];
  rolled_back: string[];
  failed: string[];
  members: Rollout['members'];
}

export function rolloutView(r: Rollout): RolloutView {
  const by = (...st: string[]) => r.members.filter((m) => st.includes(m.status)).map((m) => m.slave);
  return {
    id: r.id, commit: r.commit, status: r.status, stage: r.stage, stages: r.members.reduce((a, m) => Math.max(a, m.stage + 1), 0),
    policy: r.policy, request_id: r.request_id, created_at: r.created_at, updated_at: r.updated_at,
    done: by('passed'), in_progress: by('updating', 'gate'), pending: by('pending'), rolled_back: by('rolled_back'), failed: by('failed', 'rollback_failed'),
    members: r.members,
  };
}

const list = (label: string, xs: string[]): string | null => (xs.length ? `${label} ${xs.join(', ')}` : null);

/** One line: `rollout 3 of abc1234: running, stage 2/3 · done a · updating b · pending c`. */
export function formatRolloutLine(v: RolloutView): string {
  const parts = [
    list('done', v.done), list('updating', v.in_progress), list('pending', v.pending),
    list('rolled back', v.rolled_back), list('failed', v.failed),
    v.status === 'halted' && v.request_id ? `retry? d8 requests approve ${v.request_id}` : null,
  ].filter((p): p is string => p !== null);
  return `rollout ${v.id} of ${shortCommit(v.commit)}: ${v.status}, stage ${Math.min(v.stage + 1, Math.max(v.stages, 1))}/${Math.max(v.stages, 1)}${parts.length ? ` · ${parts.join(' · ')}` : ''}`;
}

/** The member table of `d8 rollout status`. */
export function formatRollout(v: RolloutView): string {
  const w = Math.max(5, ...v.members.map((m) => m.slave.length));
  const lines = [
    formatRolloutLine(v),
    `policy: canary ${v.policy.canary}, batchSize ${v.policy.batchSize}, healthyForSeconds ${v.policy.healthyForSeconds}, maxFailures ${v.policy.maxFailures} · started ${v.created_at}`,
    ...v.members.map((m) => `  ${m.slave.padEnd(w)}  stage ${m.stage}  ${m.status.padEnd(15)}  from ${shortCommit(m.from_commit)}${m.error ? `  ${m.error}` : ''}`),
  ];
  return lines.join('\n') + '\n';
}
