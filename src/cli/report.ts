/** `gta report RUN_DIR... [--out DIR]`: the compare tables, curves and report.html for any finished runs. */
import path from 'node:path';
import { runDirsIn, runStatus } from '../run/run_dir.js';
import { writeReport } from '../report/write.js';
import { GtaError } from '../util/errors.js';
import { createLogger } from '../util/log.js';

export async function reportCommand(a: { runs: string[]; out: string; fraction: number; logLevel: string }): Promise<void> {
  const log = createLogger(a.logLevel);
  // A sweep folder stands for the runs inside it.
  const dirs = a.runs.flatMap(runDirsIn);
  const finished = dirs.filter((d) => runStatus(d) === 'finished');
  if (finished.length === 0) throw new GtaError(`none of the ${dirs.length} runs has finished`);
  if (finished.length < dirs.length) log.warn({ skipped: dirs.length - finished.length }, 'unfinished runs left out');
  await writeReport(finished, a.out, path.basename(path.resolve(a.out)), { fraction: a.fraction }, log);
}
