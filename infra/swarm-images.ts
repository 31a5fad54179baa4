/**
 * The swarm image's lifecycle on the manager. The docker provider's Image resource never deletes
 * what it built, so every release left an image behind, and `pulumi destroy` left all of them. This
 * script runs on the manager (over the same ssh the docker provider uses) after each new image is
 * built: `prune` keeps the newest `keep` releases of the repository (the one being deployed among
 * them, older ones for a rollback) and removes the rest; `remove-all` (the resource's delete, after
 * the service is gone) removes every image of the repository. An image a container still uses is
 * left for the next run by `prune`; `remove-all` waits for the service's containers to go and then
 * fails naming what is left.
 *
 * POSIX sh and the docker CLI only; one line per image on stdout (`kept`, `removed`, `in-use`).
 */
import { shQuote } from '../core/shell-quote';
import { swarmSshOpts, type SwarmManager } from './swarm-spec';

export type ImageCleanupMode = 'prune' | 'remove-all';

export const IMAGE_CLEANUP_SCRIPT = `set -u
mode=$1 repo=$2 keep=\${3:-3} wait_s=\${4:-60}
case $keep in ''|*[!0-9]*) echo "keep must be a whole number, not $keep" >&2; exit 2 ;; esac
list() {
  # newest first; an untagged leftover of the repository is named by its id
  docker image ls --no-trunc --format '{{.CreatedAt}}|{{.Tag}}|{{.ID}}' "$repo" | sort -r |
    while IFS='|' read -r _ tag id; do
      if [ "$tag" = "<none>" ]; then echo "$id"; else echo "$repo:$tag"; fi
    done
}
remove() {
  if out=$(docker image rm "$1" 2>&1); then echo "removed $1"; return 0; fi
  case $out in
    *"being used"*|*"is using"*|*"conflict"*) echo "in-use $1"; return 1 ;;
  esac
  echo "failed $1: $out" >&2; return 1
}
case $mode in
  prune)
    n=0
    for ref in $(list); do
      n=$((n + 1))
      if [ $n -le "$keep" ]; then echo "kept $ref"; else remove "$ref" || :; fi
    done ;;
  remove-all)
    deadline=$(( $(date +%s) + wait_s ))
    while :; do
      left=
      for ref in $(list); do remove "$ref" || left="$left $ref"; done
      [ -z "$left" ] && exit 0
      if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "images still in use after \${wait_s}s:$left (docker ps -a --filter ancestor=<image> shows by what)" >&2
        exit 1
      fi
      sleep 2
    done ;;
  *) echo "mode must be prune or remove-all, not $mode" >&2; exit 2 ;;
esac
`;

/** The shell words after `sh -s --` for one run of the script. */
export function imageCleanupArgs(mode: ImageCleanupMode, repository: string, keep: number, waitSeconds = 60): string[] {
  if (!Number.isInteger(keep) || keep < 1) throw new RangeError(`keep must be a whole number >= 1 (got ${keep})`);
  return [mode, repository, String(keep), String(waitSeconds)];
}

/** The local command that runs the script on the manager: `ssh … user@host sh -s -- …`, the script on stdin. */
export function imageCleanupCommand(manager: SwarmManager, sshKeyPath: string | undefined, args: string[], sshOptions: string[] = []): string {
  const ssh = ['ssh', ...swarmSshOpts(sshKeyPath), ...sshOptions, '-p', String(manager.port), manager.destination, '--', 'sh', '-s', '--', ...args.map(shQuote)];
  return ssh.map(shQuote).join(' ');
}
