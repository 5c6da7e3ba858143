/**
 * Runs every (dataset, arm, seed) of a sweep as an ordinary `gta train` in a worker process, up to
 * `jobs` at a time. Each run has a fixed directory, so running the sweep again skips finished runs,
 * resumes interrupted ones from their checkpoint, and restarts ones that never saved one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import os from 'node:os';
import { repoRoot } from '../util/paths.js';
import { RunDir, runStatus } from '../run/run_dir.js';
import type { Logger } from '../util/log.js';
import { startProgress } from '../util/progress.js';

export interface SweepRun {
  dataset: string;
  /** The arm's name (its mode, unless the sweep names arms). */
  arm: string;
  seed: number;
  config: string;
  dir: string;
  overrides: string[];
}

export interface SweepOutcome {
  run: SweepRun;
  action: 'skipped' | 'trained' | 'resumed';
  ok: boolean;
  error?: string;
}

export async function runSweep(runs: SweepRun[], jobs: number, log: Logger, extraArgs: string[] = []): Promise<SweepOutcome[]> {
  const outcomes: SweepOutcome[] = [];
  const todo = runs.filter((r) => {
    if (runStatus(r.dir) === 'finished') {
      outcomes.push({ run: r, action: 'skipped', ok: true });
      return false;
    }
    return true;
  });
  const bar = startProgress('sweep', runs.length, log);
  let done = outcomes.length;
  bar.update(done, { running: 0 });
  const active = new Set<SweepRun>();
  const progressOf = () => [...active].map((r) => `${r.dataset}/${r.arm}/s${r.seed}@${lastStep(r.dir)}`).join(' ');
  const ticker = setInterval(() => bar.update(done, { running: progressOf() }), 2000);
  const queue = [...todo];
  const worker = async () => {
    for (let r = queue.shift(); r; r = queue.shift()) {
      active.add(r);
      const resumable = runStatus(r.dir) !== null && RunDir.open(r.dir).hasCheckpoint('latest');
      if (!resumable) fs.rmSync(r.dir, { recursive: true, force: true });
      const args = resumable
        ? ['train', '--resume', r.dir]
        : ['train', '--config', r.config, '--run-dir', r.dir, ...r.overrides.flatMap((o) => ['--set', o])];
      const res = await runChild([...args, ...extraArgs, '--log-level', 'warn'], jobs);
      active.delete(r);
      done++;
      const error = res.code === 0 ? undefined : errorLine(res.stderr);
      outcomes.push({ run: r, action: resumable ? 'resumed' : 'trained', ok: res.code === 0, error });
      if (error) log.error({ run: r.dir, error }, 'run failed');
      bar.update(done, { running: progressOf() });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, jobs) }, worker));
  clearInterval(ticker);
  bar.stop();
  return outcomes;
}

/** The child's own one-line error ("gta: error: ..."), else its last line. */
function errorLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  return lines.find((l) => l.startsWith('gta: ')) ?? lines[lines.length - 1] ?? 'no output';
}

/**
 * One run in a child process. With several jobs the cores are shared out among the children (the torch
 * backend would otherwise take the count measured for a machine of its own in each); one job chooses
 * as a lone run does.
 */
function runChild(args: string[], jobs: number): Promise<{ code: number; stderr: string }> {
  const share = jobs > 1 ? { GTA_THREADS: String(Math.max(1, Math.floor(os.availableParallelism() / jobs))) } : {};
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(repoRoot(), 'bin', 'gta'), ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...share, ...process.env } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-20000);
    });
    child.on('exit', (code) => resolve({ code: code ?? 1, stderr }));
  });
}

function lastStep(dir: string): number {
  return runStatus(dir) === null ? 0 : RunDir.open(dir).lastStep();
}
