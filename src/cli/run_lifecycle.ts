/** What `gta train` and `gta pretrain` share: where a resume starts, and how a run ends. */
import type { z } from 'zod';
import { loadConfig } from '../config/load.js';
import { checkTrainingCheckpoint, readTrainerState } from '../model/checkpoint.js';
import { markFailed, RunDir, RUN_FILES } from '../run/run_dir.js';
import type { RunSummary } from '../run/files.js';
import { GtaError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { stopOnSignals } from './signals.js';

/**
 * What `--resume DIR|latest` starts from; nothing in the run directory changes yet. With checkResume
 * (once the run directory is locked), everything a resume could fail on before its first step is
 * checked before anything changes, so a resume that cannot start leaves the run exactly as it was.
 */
export function openResume<S extends z.ZodType>(arg: string, command: 'train' | 'pretrain', schema: S, overrides: string[]): { run: RunDir; resumeFrom: string; config: z.infer<S>; step: number } {
  const run = RunDir.resumable(arg, command);
  const resumeFrom = run.checkpoint('latest');
  const { config } = loadConfig(schema, run.file(RUN_FILES.config), overrides);
  return { run, resumeFrom, config, step: readTrainerState(resumeFrom).step };
}

/**
 * Every file of the checkpoint a resume starts from, against its checksum. Under the run directory's
 * lock: a run still training replaces its checkpoint meanwhile, which read unlocked looks corrupted.
 */
export function checkResume(resumeFrom: string): void {
  checkTrainingCheckpoint(resumeFrom);
}

/**
 * Runs `train` (given whether a signal asked it to stop) to its end and records how it ended:
 * summary.json always; an interrupted run is marked so and the error says how to resume (exit 130);
 * a failure marks the run failed; a finished run is marked finished and `result` is printed.
 */
export async function runToEnd(
  run: RunDir,
  command: 'train' | 'pretrain',
  log: Logger,
  train: (shouldStop: () => boolean) => Promise<RunSummary>,
  result: (summary: RunSummary) => string,
): Promise<void> {
  const signals = stopOnSignals((s) => log.warn(`${s}: stopping after this step (again to quit at once)`));
  try {
    const summary = await train(signals.requested);
    run.writeJson(RUN_FILES.summary, summary);
    if (summary.status === 'interrupted') {
      run.setStatus('interrupted', { step: summary.steps });
      throw new GtaError(`interrupted at step ${summary.steps}; continue with: gta ${command} --resume ${run.dir}`, 130);
    }
    run.setStatus('finished', { finished: new Date().toISOString() });
    process.stdout.write(result(summary));
  } catch (e) {
    if (!(e instanceof GtaError && e.exitCode === 130)) markFailed(run, e);
    throw e;
  } finally {
    signals.dispose();
  }
}
