/**
 * A Node.js distribution mirror on loopback for tests and bench:deploy, made from THIS machine's own
 * node binary repacked the way the official tarballs are laid out (node-vX-linux-x64/bin/node) with
 * the release's SHASUMS256.txt. The test pins d8:nodeVersion to this node's version and points
 * d8:nodeDistUrl at the server. The repacked tarball is cached under ~/.cache/d8/node-mirror.
 */
import { execFileSync } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import http from 'http';
import os from 'os';
import path from 'path';

export interface NodeMirrorDir {
  /** The distribution root: <root>/<version>/{SHASUMS256.txt, node-<version>-linux-x64.tar.gz}. */
  root: string;
  version: string;
  tarball: string;
  sha256: string;
  bytes: number;
}

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Builds (or reuses) the mirror directory for process.execPath. */
export function nodeMirrorDir(cacheRoot = path.join(os.homedir(), '.cache', 'd8', 'node-mirror')): NodeMirrorDir {
  const version = process.version;
  const node = fs.realpathSync(process.execPath);
  const st = fs.statSync(node);
  const root = path.join(cacheRoot, `${version}-${st.size}-${Math.floor(st.mtimeMs)}`);
  const name = `node-${version}-linux-x64`;
  const tarball = path.join(root, version, `${name}.tar.gz`);
  const sums = path.join(root, version, 'SHASUMS256.txt');
  if (!fs.existsSync(sums)) {
    const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'd8-node-mirror-'));
    try {
      fs.mkdirSync(path.join(stage, name, 'bin'), { recursive: true });
      fs.copyFileSync(node, path.join(stage, name, 'bin', 'node'));
      fs.chmodSync(path.join(stage, name, 'bin', 'node'), 0o755);
      fs.mkdirSync(path.dirname(tarball), { recursive: true });
      // gzip -1: the tests need the layout and the checksums, not the official compression ratio.
      execFileSync('sh', ['-c', `tar -C "$1" -cf - "$2" | gzip -1 >"$3.part" && mv "$3.part" "$3"`, 'sh', stage, name, tarball]);
      const line = `${sha256(tarball)}  ${name}.tar.gz\n`;
      fs.writeFileSync(`${sums}.part`, line);
      fs.renameSync(`${sums}.part`, sums);
    } finally {
      fs.rmSync(stage, { recursive: true, force: true });
    }
  }
  return { root, version, tarball, sha256: fs.readFileSync(sums, 'utf8').split(/\s+/)[0], bytes: fs.statSync(tarball).size };
}

/** A copy of the mirror whose tarball has one byte flipped (SHASUMS256.txt unchanged). */
export function corruptedMirrorDir(m: NodeMirrorDir, into: string): NodeMirrorDir {
  const dir = path.join(into, m.version);
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(m.root, m.version, 'SHASUMS256.txt'), path.join(dir, 'SHASUMS256.txt'));
  const bad = path.join(dir, path.basename(m.tarball));
  fs.copyFileSync(m.tarball, bad);
  flipByte(bad, Math.floor(m.bytes / 2));
  return { ...m, root: into, tarball: bad };
}

export function flipByte(file: string, at: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0] ^= 0xff;
    fs.writeSync(fd, b, 0, 1, at);
  } finally {
    fs.closeSync(fd);
  }
}

export interface NodeMirrorServer {
  url: string;
  /** Paths requested so far ("/v20.20.2/SHASUMS256.txt"). */
  requests: string[];
  close(): Promise<void>;
}

/** Serves `root` read-only on 127.0.0.1 (GET only; 404 outside it). */
export function serveNodeMirror(root: string): Promise<NodeMirrorServer> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const p = decodeURIComponent((req.url ?? '/').split('?')[0]);
    requests.push(p);
    const file = path.join(root, path.normalize(p));
    if (req.method !== 'GET' || !file.startsWith(root + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-length': fs.statSync(file).size, 'content-type': 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      resolve({
        url: `http://127.0.0.1:${port}`,
        requests,
        close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
      });
    });
  });
}
