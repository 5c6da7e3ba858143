/**
 * The folders a worker may touch for a job: it reads only under its read roots (the gta install's
 * datasets/ and checkpoints/, its own runs folder and every --allow folder) and writes only under its
 * write roots (its runs folder and every --allow folder). Paths are compared after resolving symbolic
 * links, so neither `../` nor a link leads out.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GtaError } from '../util/errors.js';

export class AllowedFolders {
  private readonly read: string[];
  private readonly write: string[];

  constructor(read: string[], write: string[]) {
    this.read = [...read, ...write].map(real);
    this.write = write.map(real);
  }

  /** The real paths of the folders a job may read, for its child (src/util/read_roots.ts). */
  readRoots(): string[] {
    return [...this.read];
  }

  /** Whether `p` (links resolved) lies under `root`. */
  static contains(root: string, p: string): boolean {
    return inside(real(p), real(root));
  }

  /** The roots, for messages. */
  describe(kind: 'read' | 'write'): string {
    return (kind === 'read' ? this.read : this.write).join(', ');
  }

  checkRead(key: string, p: string): void {
    if (!this.read.some((root) => inside(real(p), root))) throw new GtaError(`${key}: ${p} is outside the folders this worker may read (${this.describe('read')}; start it with --allow DIR)`);
  }

  checkWrite(key: string, p: string): void {
    if (!this.write.some((root) => inside(real(p), root))) throw new GtaError(`${key}: ${p} is outside the folders this worker may write (${this.describe('write')}; start it with --allow DIR)`);
  }
}

/** The real path of `p`: of its nearest existing ancestor, with the rest appended (a folder not made yet). */
function real(p: string): string {
  const abs = path.resolve(p);
  const rest: string[] = [];
  for (let dir = abs; ; dir = path.dirname(dir)) {
    try {
      return path.join(fs.realpathSync(dir), ...rest.reverse());
    } catch {
      if (path.dirname(dir) === dir) return abs;
      rest.push(path.basename(dir));
    }
  }
}

function inside(p: string, root: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}
