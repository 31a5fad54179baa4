/**
 * The agent's own log file, capped: when the next line would take it past `maxBytes`, the file
 * becomes `<file>.1` (replacing the previous one) and a new file is started. So the agent's logs
 * never hold more than twice the cap, with no logrotate or other tool on the host. Writes are
 * synchronous, like the stderr logger's, so a line is on disk before the process can exit.
 */
import fs from 'fs';

export class RotatingLogFile {
  private fd: number;
  private size: number;

  constructor(readonly file: string, private readonly maxBytes: number) {
    this.fd = fs.openSync(file, 'a', 0o600);
    this.size = fs.fstatSync(this.fd).size;
  }

  /** Never throws (a full disk must not take a request down with it): a line that cannot be written goes to stderr. */
  write(line: string): boolean {
    const bytes = Buffer.byteLength(line);
    try {
      if (this.size > 0 && this.size + bytes > this.maxBytes) this.rotate();
      fs.writeSync(this.fd, line);
      this.size += bytes;
    } catch {
      process.stderr.write(line);
    }
    return true;
  }

  private rotate(): void {
    fs.renameSync(this.file, `${this.file}.1`);
    const next = fs.openSync(this.file, 'a', 0o600);
    fs.closeSync(this.fd);
    this.fd = next;
    this.size = 0;
  }
}
