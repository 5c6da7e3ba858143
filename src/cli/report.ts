/** `gta report RUN_DIR... [--out DIR]`: the compare tables, curves and report.html for any finished runs. */
import fs from 'node:fs';
import path from 'node:path';
import { GtaError } from '../util/errors.js';
import { createLogger } from '../util/log.js';
import { writeReport } from './compare.js';
import { runStatus } from '../report/run_dir.js';

export async function reportCommand(a: { runs: string[]; out: string; fraction: number; logLevel: string }): Promise<void> {
  const log = createLogger(a.logLevel);
  // A sweep folder stands for the runs inside it.
  const dirs = a.runs.flatMap((d) => {
    if (fs.existsSync(path.join(d, 'run.json'))) return [d];
    const inner = path.join(d, 'runs');
    if (fs.existsSync(inner)) return fs.readdirSync(inner).map((x) => path.join(inner, x)).filter((x) => fs.existsSync(path.join(x, 'run.json')));
    throw new GtaError(`${d}: not a gta run directory or sweep folder`);
  });
  const finished = dirs.filter((d) => runStatus(d) === 'finished');
  if (finished.length === 0) throw new GtaError(`none of the ${dirs.length} runs has finished`);
  if (finished.length < dirs.length) log.warn({ skipped: dirs.length - finished.length }, 'unfinished runs left out');
  await writeReport(finished, a.out, path.basename(path.resolve(a.out)), { fraction: a.fraction }, log);
}
