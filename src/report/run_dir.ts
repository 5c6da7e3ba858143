/**
 * The run directory of DESIGN.md section 6. run.json carries the run's state (running, finished,
 * failed, interrupted) so nobody mistakes a broken run for a complete one; metrics.jsonl is appended
 * one whole line per write, so a killed run leaves every finished line readable.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { repoRoot } from '../util/paths.js';
import { writeError } from '../util/errors.js';

export type RunStatus = 'running' | 'finished' | 'failed' | 'interrupted';

export class RunDir {
  private constructor(readonly dir: string) {}

  /** Creates `<outputDir>/<name>-<UTC time>` (with a suffix if that exists already). */
  static create(outputDir: string, name: string): RunDir {
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    fs.mkdirSync(outputDir, { recursive: true });
    for (let i = 0; ; i++) {
      const dir = path.join(outputDir, `${name}-${stamp}${i ? `-${i}` : ''}`);
      try {
        fs.mkdirSync(dir);
        return new RunDir(dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
  }

  /** Creates exactly `dir` (its parent may exist); fails if it exists already. */
  static createAt(dir: string): RunDir {
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    fs.mkdirSync(dir);
    return new RunDir(dir);
  }

  static open(dir: string): RunDir {
    return new RunDir(dir);
  }

  file(name: string): string {
    return path.join(this.dir, name);
  }

  /** Whole-file writes go through a temporary file and a rename, so readers never see half a file. */
  writeFile(name: string, content: string): void {
    const target = this.file(name);
    const tmp = `${target}.tmp-${process.pid}`;
    try {
      fs.writeFileSync(tmp, content);
      fs.renameSync(tmp, target);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw writeError(target, e);
    }
  }

  writeJson(name: string, value: unknown): void {
    this.writeFile(name, JSON.stringify(value, null, 2) + '\n');
  }

  readJson<T>(name: string): T {
    return JSON.parse(fs.readFileSync(this.file(name), 'utf8')) as T;
  }

  /** Appends one JSON object as one line (a single write call: a crash cannot split it). */
  appendJsonl(name: string, record: object): void {
    try {
      fs.appendFileSync(this.file(name), JSON.stringify(record) + '\n');
    } catch (e) {
      throw writeError(this.file(name), e);
    }
  }

  setStatus(status: RunStatus, extra: Record<string, unknown> = {}): void {
    const run = this.readJson<Record<string, unknown>>('run.json');
    this.writeJson('run.json', { ...run, status, ...extra, updated: new Date().toISOString() });
  }
}

/** The status in a run directory's run.json, or null when it has none (or it cannot be read). */
export function runStatus(dir: string): string | null {
  const f = path.join(dir, 'run.json');
  if (!fs.existsSync(f)) return null;
  try {
    return (JSON.parse(fs.readFileSync(f, 'utf8')) as { status: string }).status;
  } catch {
    return null;
  }
}

/**
 * Marks a run failed with its error. If even that cannot be written (a full disk), run.json keeps
 * saying "running", which is still not "finished"; the original error is what the user needs to see.
 */
export function markFailed(run: RunDir, e: unknown): void {
  try {
    run.setStatus('failed', { error: (e as Error).message });
  } catch {
    // keep the original error
  }
}

/** Versions, git state and command line for run.json: what is needed to reproduce a run. */
export function provenance(): Record<string, unknown> {
  const root = repoRoot();
  const git = (args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  let commit: string | null = null;
  let dirty: boolean | null = null;
  try {
    commit = git(['rev-parse', 'HEAD']);
    dirty = git(['status', '--porcelain', '--untracked-files=no']).length > 0;
  } catch {
    // not a git checkout (e.g. an npm install): leave unknown
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  const tfjsPkg = path.join(root, 'node_modules', '@tensorflow', 'tfjs-core', 'package.json');
  return {
    gta_version: pkg.version,
    node_version: process.version,
    tfjs_version: fs.existsSync(tfjsPkg) ? (JSON.parse(fs.readFileSync(tfjsPkg, 'utf8')) as { version: string }).version : null,
    platform: `${process.platform}-${process.arch}`,
    git: { commit, dirty },
    command: process.argv.slice(1),
    cwd: process.cwd(),
  };
}
