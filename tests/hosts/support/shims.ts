/** Root-installed PATH shims in /usr/local/bin (first on sshd's PATH) that make a host look like another. */
import { shQuote } from '../../../core/shell-quote';
import { rootExec, type ContainerHost } from '../../../scripts/test-hosts/containers';

/** An Alpine-like userland: no GNU_LIBC_VERSION, and ldd is musl's. */
export const MUSL_SHIMS: Record<string, string> = {
  getconf: 'case "$1" in GNU_LIBC_VERSION) echo "getconf: Unrecognized variable \'GNU_LIBC_VERSION\'" >&2; exit 1 ;; *) exec /usr/bin/getconf "$@" ;; esac',
  ldd: 'echo "musl libc (x86_64)" >&2; echo "Version 1.2.4" >&2; echo "Dynamic Program Loader" >&2; exit 1',
};

/** Shim bodies by command name (POSIX sh; the real tools are in /usr/bin). */
export function installShims(h: ContainerHost, shims: Record<string, string>): void {
  for (const [cmd, body] of Object.entries(shims)) {
    const w = rootExec(h, `printf '%s\\n' '#!/bin/sh' ${shQuote(body)} >/usr/local/bin/${cmd} && chmod 755 /usr/local/bin/${cmd}`);
    if (w.code !== 0) throw new Error(`cannot install the ${cmd} shim on ${h.container}: ${w.out}`);
  }
}
