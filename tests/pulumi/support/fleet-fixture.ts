/** The 3-slave fleet the mocks suite declares, and the mock engine state that answers for it. */
import fs from 'fs';
import path from 'path';
import { resolveFleetConfig, type FleetConfig, type FleetConfigInput } from '../../../core/stack-config';
import type { Strategy } from '../../../core/protocol';
import { DOCKER_IMAGE_TYPE, DOCKER_SECRET_TYPE } from '../../../infra/urns';
import { keyPair, randomToken } from './fixtures';

export const TOKEN = randomToken();
export const KEYS = keyPair();
export const HOST_KEY = keyPair().publicOpenSsh;

/** pc: remote with a pinned host key; vps: remote, other port and strategies; pi: the master itself. */
export function threeSlaves(): FleetConfigInput {
  return {
    slaves: [
      { name: 'pc', host: '127.0.0.2', user: 'd8', sshPort: 2222, hostKey: `pc.lan ${HOST_KEY} root@pc` },
      { name: 'vps', host: 'vps.example.org', user: 'deploy', agentPort: 7601, strategies: ['venv', 'native'] },
      { name: 'pi', host: 'local', strategies: ['native'] },
    ],
    agentToken: TOKEN,
    sshPrivateKey: KEYS.privatePem,
    installAttempts: 2,
    installDelaySeconds: 5,
  };
}

export function resolve(stack: string, raw: Record<string, unknown>): FleetConfig {
  return resolveFleetConfig(raw, { stack, env: {} });
}

/** What install.sh prints last when `strategy` won. */
export function installResultLine(strategy: Strategy, tlsFingerprint?: string): string {
  return JSON.stringify({ ok: true, strategy, attempts: [{ strategy, attempt: 1, ok: true, exit_code: 0, stderr_tail: '', seconds: 4.5 }],
    ...(tlsFingerprint ? { tls_fingerprint: tlsFingerprint } : {}) });
}

/** The certificate fingerprint pc's install reports (the others report none, as agents installed without TLS). */
export const PC_TLS_FINGERPRINT = Array.from({ length: 32 }, (_, i) => (i * 7 + 16).toString(16).toUpperCase().padStart(2, '0').slice(-2)).join(':');

/** The winning strategy the mock engine reports per install (as if install.sh had run). */
export const WINNERS: Record<string, Strategy> = { pc: 'docker', vps: 'venv', pi: 'native' };

export function engineState(type: string, name: string, inputs: Record<string, unknown>): Record<string, unknown> {
  const slave = name.replace(/-install$/, '');
  if (type.startsWith('command:') && name.endsWith('-install')) {
    const stdout = WINNERS[slave] ? `[install] trying ${WINNERS[slave]}\n${installResultLine(WINNERS[slave], slave === 'pc' ? PC_TLS_FINGERPRINT : undefined)}\n` : 'install.sh crashed\n';
    return { ...inputs, stdout, stderr: '' };
  }
  if (type === DOCKER_SECRET_TYPE) return { ...inputs, name: `${name}-4f2a9c1` };
  if (type === DOCKER_IMAGE_TYPE) return { ...inputs, repoDigest: `${String(inputs.imageName).replace(/:[^:/]+$/, '')}@sha256:${'ab'.repeat(32)}` };
  return inputs;
}

export function writeKeyFile(dir: string, text: string): string {
  const file = path.join(dir, 'id_ed25519');
  fs.writeFileSync(file, text, { mode: 0o600 });
  return file;
}
