/**
 * `gta compare-baselines --config FILE`: runs the sweep (SFT vs RL vs GTA over seeds), then aggregates
 * it into compare.jsonl, compare.md, curves.jsonl and report.html with the curves as SVG and PNG. The
 * runs execute in worker processes here, or with `--queue URL` as jobs that `gta worker` processes on
 * any machine pull. The sweep folder is locked while a coordinator uses it, so a second one started on
 * the same sweep is refused with one line instead of running (and deleting) the same runs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../config/load.js';
import { CompareConfigSchema, TrainConfigSchema } from '../config/schema.js';
import { configHash } from '../run/config_identity.js';
import { runSweep, type SweepExecutor, type SweepRun } from '../compare/sweep.js';
import { LocalExecutor } from '../compare/local.js';
import { sweepKey } from '../queue/job.js';
import { lockFolder } from '../util/folder_lock.js';
import { runStatus } from '../run/run_dir.js';
import { SWEEP_FILE, writeReport, type ReportOptions } from '../report/write.js';
import { GtaError } from '../util/errors.js';
import { createLogger } from '../util/log.js';
import { stopOnSignals } from './signals.js';

export interface CompareArgs {
  config: string;
  datasets?: string[];
  modes?: string[];
  seeds?: number[];
  jobs?: number;
  set: string[];
  backend?: string;
  logLevel: string;
  /** A Redis URL: the runs become jobs there for `gta worker` processes. */
  queue?: string;
  /** The sweep folder is on storage every worker mounts at the same path: workers write the runs there. */
  shared?: boolean;
  /** Train again the runs in the sweep folder that were made with another config (else refused). */
  force?: boolean;
}

export async function compareCommand(a: CompareArgs): Promise<void> {
  const log = createLogger(a.logLevel);
  const flags = [
    ...(a.datasets ? [`datasets=[${a.datasets.join(',')}]`] : []),
    ...(a.modes ? [`modes=[${a.modes.join(',')}]`] : []),
    ...(a.seeds ? [`seeds=[${a.seeds.join(',')}]`] : []),
    ...(a.jobs ? [`jobs=${a.jobs}`] : []),
  ];
  if (a.shared && !a.queue) throw new GtaError('--shared is for a sweep over --queue (a local sweep writes its folder itself)');
  // the queue's modules load BullMQ and ioredis (~0.6 s): only a sweep over --queue imports them
  const target = a.queue ? (await import('../queue/redis.js')).parseRedisUrl(a.queue) : undefined;
  const { config } = loadConfig(CompareConfigSchema, a.config, flags);
  const out = config.output_dir ?? path.join('runs', config.name);
  const runs: SweepRun[] = [];
  for (const dataset of config.datasets) {
    for (const arm of config.arms) {
      const template = arm.config_template ?? config.config_template;
      const file = template.replaceAll('{dataset}', dataset).replaceAll('{mode}', arm.mode);
      if (!fs.existsSync(file)) throw new GtaError(`${a.config}: config_template: no run config ${file} for dataset '${dataset}', arm '${arm.name}'`);
      for (const seed of config.seeds) {
        const overrides = [...config.set, ...arm.set, ...a.set, `mode=${arm.mode}`, `seed=${seed}`, `arm=${arm.name}`];
        runs.push({ dataset, arm: arm.name, seed, config: file, dir: path.join(out, 'runs', `${dataset}-${arm.name}-seed${seed}`), overrides, ...identify(file, overrides) });
      }
    }
  }
  const report: ReportOptions = { title: config.name, threshold: config.threshold, pairs: config.pairs };
  await lockFolder(out, `gta compare-baselines --config ${a.config}`);
  // what `gta report` needs to rebuild this report from the folder alone
  fs.writeFileSync(path.join(out, SWEEP_FILE), JSON.stringify(report, null, 2) + '\n');
  let executor: SweepExecutor;
  if (target) {
    // the backend flag travels as an override, as `gta train --backend` makes it one
    if (a.backend) for (const r of runs) r.overrides.push(`backend=${a.backend}`);
    const { QueueExecutor } = await import('../queue/coordinator.js');
    executor = new QueueExecutor({ target, key: sweepKey(config.name, out, os.hostname(), a.shared === true), sharedDir: a.shared ? path.resolve(out) : undefined }, log);
  } else {
    executor = new LocalExecutor(config.jobs, a.backend ? ['--backend', a.backend] : []);
  }
  log.info({ runs: runs.length, ...(target ? { queue: target.shown } : { jobs: config.jobs }), out }, 'sweep');
  // Ctrl-C: a local sweep starts no more runs and waits for its running ones to stop after their step
  const signals = executor.stop ? stopOnSignals((s) => (log.warn(`${s}: stopping each run after its step (again to quit at once)`), executor.stop!())) : undefined;
  let outcomes;
  try {
    outcomes = await runSweep(runs, executor, log, a.force === true);
  } finally {
    signals?.dispose();
  }
  if (signals?.requested()) {
    const stopped = outcomes.filter((o) => o.interrupted).length;
    throw new GtaError(`interrupted: ${stopped} run${stopped === 1 ? '' : 's'} stopped after ${stopped === 1 ? 'its' : 'their'} step, ${runs.length - outcomes.length} not started; run the same command again to continue`, 130);
  }
  const failed = outcomes.filter((o) => !o.ok);
  const finished = runs.filter((r) => runStatus(r.dir) === 'finished').map((r) => r.dir);
  if (finished.length === 0) throw new GtaError(`no run of the sweep finished (${failed.map((f) => `${f.run.dir}: ${f.error}`).join('; ')})`, 1);
  await writeReport(finished, out, report, log);
  if (failed.length) throw new GtaError(`${failed.length} of ${runs.length} runs failed: ${failed.map((f) => `${f.run.dir}: ${f.error}`).join('; ')}; the report covers the others`, 1);
}

/**
 * What a run will be: a run found in its folder counts only if it was made with the same config hash.
 * A config that does not load has none; its run fails on its own with the config's one-line error,
 * as the sweep's other runs go on.
 */
function identify(file: string, overrides: string[]): Pick<SweepRun, 'resolved' | 'configHash'> {
  try {
    const resolved = loadConfig(TrainConfigSchema, file, overrides).config;
    return { resolved, configHash: configHash(resolved) };
  } catch (e) {
    if (e instanceof GtaError) return {};
    throw e;
  }
}
