/**
 * Runs every (dataset, arm, seed) of a sweep as an ordinary `gta train`. Each run has a fixed directory,
 * so running the sweep again skips finished runs, resumes interrupted ones from their checkpoint, and
 * restarts ones that never saved one. Where the runs execute is the executor's business: worker
 * processes on this machine (local.ts), or jobs on a queue that `gta worker` processes pull
 * (src/queue/coordinator.ts).
 */
import { runStatus } from '../run/run_dir.js';
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

/** Where a sweep's runs execute. */
export interface SweepExecutor {
  /** Runs each of `runs` to its end, calling `done` as each one ends (finished or failed). */
  execute(runs: SweepRun[], done: (o: SweepOutcome) => void): Promise<void>;
  /** The runs in progress and the step each has reached, for the progress line. */
  running(): { run: SweepRun; step: number }[];
}

export async function runSweep(runs: SweepRun[], executor: SweepExecutor, log: Logger): Promise<SweepOutcome[]> {
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
      if (o.error) log.error({ run: o.run.dir, error: o.error }, 'run failed');
      bar.update(outcomes.length, { running: progressOf() });
    });
  } finally {
    clearInterval(ticker);
    bar.stop();
  }
  return outcomes;
}
