/** `gta report RUN_DIR... [--out DIR]`: the compare tables, curves and report.html for any finished runs. */
import fs from 'node:fs';
import path from 'node:path';
import { runDirsIn, runStatus } from '../run/run_dir.js';
import { SWEEP_FILE, writeReport, type ReportOptions } from '../report/write.js';
import { GtaError } from '../util/errors.js';
import { createLogger } from '../util/log.js';

export async function reportCommand(a: { runs: string[]; out: string; fraction?: number; logLevel: string }): Promise<void> {
  const log = createLogger(a.logLevel);
  // A sweep folder stands for the runs inside it.
  const dirs = a.runs.flatMap(runDirsIn);
  const finished = dirs.filter((d) => runStatus(d) === 'finished');
  if (finished.length === 0) throw new GtaError(`none of the ${dirs.length} runs has finished`);
  if (finished.length < dirs.length) log.warn({ skipped: dirs.length - finished.length }, 'unfinished runs left out');
  const sweep = a.runs.length === 1 ? sweepOptions(a.runs[0]) : undefined;
  const opts: ReportOptions = {
    title: sweep?.title ?? path.basename(path.resolve(a.out)),
    pairs: sweep?.pairs,
    threshold: a.fraction !== undefined ? { fraction: a.fraction } : (sweep?.threshold ?? { fraction: 0.95 }),
  };
  await writeReport(finished, a.out, opts, log);
}

/** The report options a sweep folder was made with (its pairs and threshold), if it has them. */
function sweepOptions(dir: string): ReportOptions | undefined {
  const file = path.join(dir, SWEEP_FILE);
  if (!fs.existsSync(file)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as ReportOptions;
  } catch (e) {
    throw new GtaError(`${file}: cannot read the sweep's report options (${(e as Error).message})`);
  }
}
