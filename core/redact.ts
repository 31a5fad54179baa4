/**
 * Secret scrubbing for anything that leaves the process as text: build logs, command output kept in
 * logs, error messages, Telegram messages. Known secret values are replaced verbatim; well-known
 * secret shapes (private keys, GIT_TOKEN=…, bearer headers, GitHub tokens, D8 API tokens) are
 * replaced by pattern.
 */
import { API_TOKEN_IN_TEXT } from './api-tokens';

export const REDACTED = '***';

const PATTERNS: RegExp[] = [
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
  /\b((?:[A-Z0-9_]*_)?(?:TOKEN|SECRET|PASSWORD|PASSPHRASE|API_KEY))=("[^"]*"|'[^']*'|\S+)/g,
  /(Bearer\s+)[A-Za-z0-9._~+/=-]+/gi,
  /\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})\b/g,
  /\b(\d{6,12}:[A-Za-z0-9_-]{30,})\b/g, // Telegram bot tokens
  API_TOKEN_IN_TEXT,
];

/** Secrets that can change while a process runs (a rotated agent token): asked again at each use. */
export type SecretSource = () => Iterable<string>;

const usable = (s: unknown): s is string => typeof s === 'string' && s.length >= 4;

export class Redactor {
  private secrets: string[];
  private readonly known: Set<string>;

  constructor(secrets: Iterable<string | undefined | null> = [], private readonly sources: readonly SecretSource[] = []) {
    this.known = new Set([...secrets].filter(usable));
    this.secrets = longestFirst(this.known);
  }

  with(...more: Array<string | undefined | null>): Redactor {
    return new Redactor([...this.known, ...more], this.sources);
  }

  /** The fixed secrets and whatever the sources hold now (once seen, a secret stays known). */
  private current(): string[] {
    let grown = false;
    for (const source of this.sources) {
      for (const s of source()) {
        if (usable(s) && !this.known.has(s)) {
          this.known.add(s);
          grown = true;
        }
      }
    }
    if (grown) this.secrets = longestFirst(this.known);
    return this.secrets;
  }

  text(input: string): string {
    let out = input;
    for (const s of this.current()) out = out.split(s).join(REDACTED);
    out = out.replace(PATTERNS[0], REDACTED);
    out = out.replace(PATTERNS[1], (_m, k: string) => `${k}=${REDACTED}`);
    out = out.replace(PATTERNS[2], (_m, p: string) => `${p}${REDACTED}`);
    out = out.replace(PATTERNS[3], REDACTED);
    out = out.replace(PATTERNS[4], REDACTED);
    out = out.replace(PATTERNS[5], (_m, id: string) => `${id}${REDACTED}`);
    return out;
  }

  /** Deep copy of a JSON-like value with every string scrubbed. */
  value<T>(input: T): T {
    if (typeof input === 'string') return this.text(input) as unknown as T;
    if (Array.isArray(input)) return input.map((v) => this.value(v)) as unknown as T;
    if (input && typeof input === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(input as Record<string, unknown>)) out[k] = this.value(v);
      return out as T;
    }
    return input;
  }
}

/**
 * Each secret as it is and as it appears inside a JSON string, escaped once (a pino line) and twice
 * (a JSON document quoted in a log field): a secret holding `"`, `\` or a newline differs in each.
 */
function spellings(secret: string): string[] {
  const once = JSON.stringify(secret).slice(1, -1);
  const twice = JSON.stringify(once).slice(1, -1);
  return [...new Set([secret, once, twice])];
}

/** Longest first, so a secret that contains another is replaced whole. */
function longestFirst(secrets: Iterable<string>): string[] {
  return [...new Set([...secrets].flatMap(spellings))].sort((a, b) => b.length - a.length);
}

/** Secrets D8 knows about from the environment, for a default redactor. */
export function environmentSecrets(env: NodeJS.ProcessEnv = process.env): string[] {
  return ['D8_AGENT_TOKEN', 'D8_SSH_PRIVATE_KEY', 'D8_DASHBOARD_TOKEN', 'TELEGRAM_TOKEN', 'GIT_TOKEN', 'GITHUB_TOKEN', 'PULUMI_CONFIG_PASSPHRASE']
    .map((k) => env[k])
    .filter((v): v is string => !!v);
}
