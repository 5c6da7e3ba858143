/**
 * Runs every (dataset, arm, seed) of a sweep as an ordinary `gta train`. Each run has a fixed directory,
 * so running the sweep again skips finished runs, resumes interrupted ones from their checkpoint, and
 * restarts ones that never saved one. Where the runs execute is the executor's business: worker
 * processes on this machine (local.ts), or jobs on a queue that `gta worker` processes pull
 * (src/queue/coordinator.ts).
 */
import fs from 'node:fs';
import type { TrainConfig } from '../config/schema.js';
import { configDifference, runConfigHash } from '../run/config_identity.js';
import { runStatus } from '../run/run_dir.js';
import { GtaError } from '../util/errors.js';
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
  /** The resolved run config and its hash: a run in `dir` counts as this run only with the same hash (absent: the config does not load). */
  resolved?: TrainConfig;
  configHash?: string;
}

export interface SweepOutcome {
  run: SweepRun;
  action: 'skipped' | 'trained' | 'resumed';
  ok: boolean;
  error?: string;
  /** Stopped after its step because the sweep was stopped (SweepExecutor.stop): resumable, not failed. */
  interrupted?: boolean;
}

/** Where a sweep's runs execute. */
export interface SweepExecutor {
  /** Runs each of `runs` to its end, calling `done` as each one ends (finished or failed). */
  execute(runs: SweepRun[], done: (o: SweepOutcome) => void): Promise<void>;
  /** The runs in progress and the step each has reached, for the progress line. */
  running(): { run: SweepRun; step: number }[];
  /** Starts no more runs and asks the running ones to stop after their step (a local sweep's Ctrl-C). */
  stop?(): void;
}

/**
 * Runs in the sweep folder made with another config than the sweep's now (a changed --set): refused,
 * naming the first and what differs, or with `force` removed so that they run again. Never skipped.
 */
function checkStale(runs: SweepRun[], force: boolean, log: Logger): void {
  const stale = runs.filter((r) => r.configHash !== undefined && runStatus(r.dir) !== null && runConfigHash(r.dir) !== r.configHash);
  if (stale.length === 0) return;
  if (!force) {
    const first = stale[0];
    throw new GtaError(
      `${first.dir}: made with another config (${configDifference(first.dir, first.resolved!)})${stale.length > 1 ? `, and ${stale.length - 1} more run${stale.length > 2 ? 's' : ''} of this sweep` : ''}; give another output_dir, or --force to train them again`,
    );
  }
  for (const r of stale) {
    log.warn({ run: r.dir, differs: configDifference(r.dir, r.resolved!) }, 'made with another config; --force: training it again');
    fs.rmSync(r.dir, { recursive: true, force: true });
  }
}

export async function runSweep(runs: SweepRun[], executor: SweepExecutor, log: Logger, force = false): Promise<SweepOutcome[]> {
  checkStale(runs, force, log);
  const outcomes: SweepOutcome[] = [];
  const todo = runs.filter((r) => {
    if (runStatus(r.dir) === 'finished') {
      outcomes.push({ run: r, action: 'skipped', ok: true });
      return false;
    }
    return true;
  });
  const bar = startProgress('sweep', runs.length, log);
  const progressOf = () => executor.running().map(({ run: r, step }) => `${r.dataset}/${r.arm}/s${r.seed}@${step}`).join(' ');
  bar.update(outcomes.length, { running: 0 });
  const ticker = setInterval(() => bar.update(outcomes.length, { running: progressOf() }), 2000);
  try {
    await executor.execute(todo, (o) => {
      outcomes.push(o);
      if (o.interrupted) log.warn({ run: o.run.dir }, 'run stopped after its step');
      else if (o.error) log.error({ run: o.run.dir, error: o.error }, 'run failed');
      bar.update(outcomes.length, { running: progressOf() });
    });
  } finally {
    clearInterval(ticker);
    bar.stop();
  }
  return outcomes;
}
