/**
 * The run directory, and the one place that knows its file names. run.json carries the run's state
 * (running, finished, failed, interrupted) so nobody mistakes a broken run for a complete one;
 * metrics.jsonl is appended one whole line per write, so a killed run leaves every finished line
 * readable; a resume first drops what was written after its checkpoint's step.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { repoRoot } from '../util/paths.js';
import { GtaError, writeError } from '../util/errors.js';
import { EventWriter, rewriteEvents } from './tensorboard.js';

import { parseRunFile, RunInfoSchema, RunSummarySchema, type RunInfo, type RunStatus, type RunSummary } from './files.js';

export type { RunStatus };

/** The files of a run directory (checkpoints/ holds checkpoint folders, see src/model/checkpoint.ts). */
export const RUN_FILES = {
  /** The config after defaults and --set overrides: what a resume and `gta eval` read back. */
  config: 'config.resolved.yaml',
  info: 'run.json',
  metrics: 'metrics.jsonl',
  samples: 'samples.jsonl',
  predictions: 'predictions.jsonl',
  summary: 'summary.json',
  /** A folder: metrics.jsonl again as TensorBoard event files (src/run/tensorboard.ts). */
  tensorboard: 'tb',
} as const;
type JsonlFile = typeof RUN_FILES.metrics | typeof RUN_FILES.samples | typeof RUN_FILES.predictions;

/** The checkpoints a run keeps: the last one written, and the one of its best eval. */
export type CheckpointName = 'latest' | 'best';

export class RunDir {
  /** The event file this process appends metrics to; started at the first metrics line. */
  private events?: EventWriter;

  /** A run directory as it is (open and resumable check it first). */
  constructor(readonly dir: string) {}

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

  /** An existing run directory (one with run.json). */
  static open(dir: string): RunDir {
    if (!fs.existsSync(path.join(dir, RUN_FILES.info))) throw new GtaError(`${dir}: not a gta run directory (no ${RUN_FILES.info})`);
    return new RunDir(dir);
  }

  /**
   * A run directory to resume with `gta <command> --resume`, or with 'latest' the newest unfinished one
   * of that command under `root`; it must have a checkpoint to continue from.
   */
  static resumable(arg: string, command: 'train' | 'pretrain', root = 'runs'): RunDir {
    const ofCommand = (r: RunDir) => (r.info().mode === 'pretrain' ? 'pretrain' : 'train') === command;
    const run = arg === 'latest' ? RunDir.newestUnfinished(root, ofCommand) : RunDir.open(arg);
    if (!ofCommand(run)) throw new GtaError(`${run.dir}: not a ${command} run; continue it with gta ${command === 'train' ? 'pretrain' : 'train'} --resume`);
    // resuming a finished run would drop its summary and predictions to train no further step
    if (run.info().status === 'finished') throw new GtaError(`${run.dir}: the run is finished (its results are in ${RUN_FILES.summary}); nothing to resume`);
    if (!run.hasCheckpoint('latest')) throw new GtaError(`${run.dir}: has no checkpoint to resume from (${run.checkpoint('latest')})`);
    return run;
  }

  private static newestUnfinished(root: string, wanted: (r: RunDir) => boolean): RunDir {
    const candidates = (fs.existsSync(root) ? fs.readdirSync(root) : [])
      .map((d) => path.join(root, d))
      .filter((d) => fs.existsSync(path.join(d, RUN_FILES.info)) && fs.existsSync(path.join(d, 'checkpoints', 'latest')))
      // a run.json that is not valid (runStatus null) is no candidate: `latest` never trips over one
      .filter((d) => ![null, 'finished'].includes(runStatus(d)) && wanted(new RunDir(d)))
      .sort((x, y) => fs.statSync(path.join(y, RUN_FILES.info)).mtimeMs - fs.statSync(path.join(x, RUN_FILES.info)).mtimeMs);
    if (candidates.length === 0) throw new GtaError(`${root}: no unfinished run with a checkpoint to resume`);
    return new RunDir(candidates[0]);
  }

  checkpoint(name: CheckpointName | string): string {
    return path.join(this.dir, 'checkpoints', name);
  }

  /**
   * Removes what a checkpoint write killed midway left (`latest.tmp-<pid>`, `latest.old-<pid>`, see
   * saveCheckpoint) next to a complete checkpoint of the same name. Only under the run directory's lock
   * (a resume): then no other process is writing one; a folder whose checkpoint is missing is kept.
   */
  removeStaleCheckpointFolders(): void {
    const dir = path.join(this.dir, 'checkpoints');
    if (!fs.existsSync(dir)) return;
    for (const entry of fs.readdirSync(dir)) {
      const m = /^(.+)\.(tmp|old)-\d+$/.exec(entry);
      if (m && fs.existsSync(path.join(dir, m[1], 'config.json'))) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
    }
  }

  /** Whether a complete training checkpoint of that name is there (one a resume can continue from). */
  hasCheckpoint(name: CheckpointName): boolean {
    return fs.existsSync(path.join(this.checkpoint(name), 'trainer_state.json'));
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

  /**
   * Appends one JSON object as one line (a single write call: a crash cannot split it). A metrics line
   * also goes to the run's TensorBoard event file, as one event of its numeric values.
   */
  appendJsonl(name: JsonlFile, record: object): void {
    try {
      fs.appendFileSync(this.file(name), JSON.stringify(record) + '\n');
    } catch (e) {
      throw writeError(this.file(name), e);
    }
    if (name !== RUN_FILES.metrics) return;
    const tb = this.file(RUN_FILES.tensorboard);
    try {
      this.events ??= EventWriter.create(tb);
      this.events.append(record as Record<string, unknown>);
    } catch (e) {
      throw writeError(tb, e);
    }
  }

  /** The lines of a JSONL file, parsed; a last line cut short by a crash is left out. */
  readJsonl(name: JsonlFile): Record<string, unknown>[] {
    const file = this.file(name);
    // a finished run's large files may be kept gzipped (results/ in the repository)
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : fs.existsSync(`${file}.gz`) ? zlib.gunzipSync(fs.readFileSync(`${file}.gz`)).toString('utf8') : undefined;
    if (text === undefined) return [];
    const out: Record<string, unknown>[] = [];
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a line cut short by a crash
      }
    }
    return out;
  }

  /** run.json, checked (a GtaError naming the file when it is not a run.json). */
  info(): RunInfo {
    return parseRunFile<RunInfo>(this.file(RUN_FILES.info), fs.readFileSync(this.file(RUN_FILES.info), 'utf8'), RunInfoSchema);
  }

  /** summary.json, checked, or null before the run has ended. */
  summary(): RunSummary | null {
    const file = this.file(RUN_FILES.summary);
    return fs.existsSync(file) ? parseRunFile<RunSummary>(file, fs.readFileSync(file, 'utf8'), RunSummarySchema) : null;
  }

  /** The step of the last line of metrics.jsonl (0 when there is none). */
  lastStep(): number {
    const file = this.file(RUN_FILES.metrics);
    if (!fs.existsSync(file)) return Number(this.readJsonl(RUN_FILES.metrics).at(-1)?.step ?? 0);
    // a sweep's progress asks every few seconds while the file grows: parse its last whole line only
    const text = fs.readFileSync(file, 'utf8').trimEnd();
    for (let end = text.length; end > 0; ) {
      const start = text.lastIndexOf('\n', end - 1) + 1;
      try {
        return Number((JSON.parse(text.slice(start, end)) as { step: number }).step);
      } catch {
        end = start - 1; // a line cut short by a crash
      }
    }
    return 0;
  }

  setStatus(status: RunStatus, extra: Record<string, unknown> = {}): void {
    this.writeJson(RUN_FILES.info, { ...this.info(), status, ...extra, updated: new Date().toISOString() } satisfies RunInfo);
  }

  /**
   * Prepares a resume from a checkpoint at `step`: drops what was written after it, so no step appears
   * twice, and records the resume in run.json. tb/ is rewritten as one new event file holding the kept
   * metrics lines (at their original wall times), so TensorBoard too shows each step once.
   */
  resumeAt(step: number, overrides: string[], configSha256?: string): void {
    this.removeStaleCheckpointFolders();
    for (const name of [RUN_FILES.metrics, RUN_FILES.samples] as const) {
      if (!fs.existsSync(this.file(name))) continue;
      const kept = this.readJsonl(name).filter((l) => Number(l.step) <= step);
      this.writeFile(name, kept.map((l) => JSON.stringify(l) + '\n').join(''));
    }
    const started = Date.parse(String(this.info().started)) / 1000;
    const tb = this.file(RUN_FILES.tensorboard);
    try {
      // A point the old files lack gets the run's start plus its time_s (training time: close enough).
      this.events = rewriteEvents(tb, this.readJsonl(RUN_FILES.metrics), (r) => (Number.isFinite(started) ? started + Number(r.time_s ?? 0) : Date.now() / 1000));
    } catch (e) {
      throw writeError(tb, e);
    }
    for (const name of [RUN_FILES.summary, RUN_FILES.predictions]) fs.rmSync(this.file(name), { force: true });
    const prev = this.info();
    // a resume's overrides change what the run is: its config hash follows them
    const identity = configSha256 !== undefined && overrides.length > 0 ? { config_sha256: configSha256 } : {};
    this.setStatus('running', { ...identity, resumes: [...(prev.resumes ?? []), { from_step: step, at: new Date().toISOString(), overrides, command: process.argv.slice(1) }] });
  }
}


/** The run directories a path stands for: itself, or the runs of a sweep folder (`<sweep>/runs/*`). */
export function runDirsIn(dir: string): string[] {
  if (fs.existsSync(path.join(dir, RUN_FILES.info))) return [dir];
  const inner = path.join(dir, 'runs');
  if (fs.existsSync(inner)) return fs.readdirSync(inner).map((x) => path.join(inner, x)).filter((x) => fs.existsSync(path.join(x, RUN_FILES.info)));
  throw new GtaError(`${dir}: not a gta run directory or sweep folder`);
}

/** The status in a run directory's run.json, or null when it has none (or it is not a valid run.json). */
export function runStatus(dir: string): RunStatus | null {
  try {
    return new RunDir(dir).info().status;
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
