/** `gta train --config FILE` (one fine-tuning run) and `gta train --resume DIR|latest` (continue one). */
import { loadConfig } from '../config/load.js';
import { TrainConfigSchema, type TrainConfig } from '../config/schema.js';
import { provenance, RunDir, RUN_FILES } from '../run/run_dir.js';
import { finetune } from '../train/finetune.js';
import { prepare } from '../train/setup.js';
import { GtaError } from '../util/errors.js';
import { createLogger } from '../util/log.js';
import { formatDuration } from '../util/format.js';
import { openResume, runToEnd } from './run_lifecycle.js';
import { claimRunDir, lockRunDir } from '../run/run_lock.js';
import { stopWithParent } from './signals.js';

export interface TrainArgs {
  config?: string;
  resume?: string;
  /** Exact run directory to create (sweeps name their runs); default: <output_dir>/<name>-<time>. */
  runDir?: string;
  set: string[];
  backend?: string;
  logLevel: string;
}

export async function trainCommand(a: TrainArgs): Promise<void> {
  const log = createLogger(a.logLevel);
  stopWithParent();
  const overrides = a.backend ? [...a.set, `backend=${a.backend}`] : a.set;
  if (a.resume !== undefined && a.config !== undefined) throw new GtaError('give --config (a new run) or --resume (continue one), not both');
  if (a.resume === undefined && a.config === undefined) throw new GtaError('gta train needs --config FILE (or --resume RUN_DIR|latest)');
  let run: RunDir;
  let config: TrainConfig;
  let resumeFrom: string | undefined;
  let prepared;
  if (a.resume !== undefined) {
    let step: number;
    ({ run, resumeFrom, config, step } = openResume(a.resume, 'train', TrainConfigSchema, overrides));
    await lockRunDir(run.dir, 'gta train --resume');
    prepared = await prepare(config, log, resumeFrom);
    run.resumeAt(step, overrides);
    log.info({ run: run.dir, step }, 'resuming run');
  } else {
    const loaded = loadConfig(TrainConfigSchema, a.config!, overrides);
    config = loaded.config;
    // the run directory is locked before anything is written there, and released when this process exits
    const claim = a.runDir ? await claimRunDir(a.runDir, 'gta train') : undefined;
    try {
      prepared = await prepare(config, log);
    } catch (e) {
      await claim?.discard();
      throw e;
    }
    run = a.runDir ? new RunDir(a.runDir) : RunDir.create(config.output_dir, config.name);
    if (!a.runDir) await lockRunDir(run.dir, 'gta train');
    run.writeFile(RUN_FILES.config, loaded.resolvedYaml);
    run.writeJson(RUN_FILES.info, {
      status: 'running',
      mode: config.mode,
      ...(config.arm ? { arm: config.arm } : {}),
      seed: config.seed,
      config_file: a.config,
      overrides,
      backend: prepared.backend,
      init: prepared.init,
      model: { params: prepared.model.numParams, arch: prepared.model.arch },
      dataset: { name: prepared.data.name, labels: prepared.data.labels, sizes: { train: prepared.data.train.length, dev: prepared.data.dev.length, test: prepared.data.test.length }, dev_source: prepared.data.devSource },
      started: new Date().toISOString(),
      ...provenance(),
    });
    log.info({ run: run.dir }, 'run directory');
  }
  await runToEnd(
    run,
    'train',
    log,
    (shouldStop) => finetune(config, prepared, run, log, shouldStop, resumeFrom),
    (summary) => {
      const f = summary.final as { split: string; accuracy: number; f1_weighted: number; generate_accuracy: number; invalid_rate: number };
      return `${run.dir}\n${f.split}: accuracy ${f.accuracy.toFixed(4)}  f1_weighted ${f.f1_weighted.toFixed(4)}  generate_accuracy ${f.generate_accuracy.toFixed(4)}  invalid ${f.invalid_rate.toFixed(4)}  (${summary.steps} steps, ${formatDuration(Number(summary.wall_time_s))})\n`;
    },
  );
}
