/**
 * `gta train --config FILE` (one fine-tuning run) and `gta train --resume DIR|latest` (continue one);
 * `--nproc N`, or a launcher's rank environment, makes it one rank of a data-parallel run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../config/load.js';
import { TrainConfigSchema, type TrainConfig } from '../config/schema.js';
import { joinWorld, world, worldEnv } from '../parallel/world.js';
import { provenance, RunDir, RUN_FILES } from '../run/run_dir.js';
import { configHash } from '../run/config_identity.js';
import { finetune } from '../train/finetune.js';
import { prepare } from '../train/setup.js';
import { GtaError } from '../util/errors.js';
import { createLogger } from '../util/log.js';
import { formatDuration } from '../util/format.js';
import { launchRanks, withoutNproc } from './launch.js';
import { checkResume, openResume, runToEnd } from './run_lifecycle.js';
import { claimRunDir, lockRunDir } from '../run/run_lock.js';
import { stopOnSignals, stopWithParent } from './signals.js';

export interface TrainArgs {
  config?: string;
  resume?: string;
  /** Exact run directory to create (sweeps name their runs); default: <output_dir>/<name>-<time>. */
  runDir?: string;
  set: string[];
  backend?: string;
  logLevel: string;
  /** Local data-parallel ranks (1: this process alone). */
  nproc?: number;
  /** This command's arguments, for the ranks --nproc starts. */
  argv?: string[];
}

/** `--set-file FILE`: a JSON list of `key.path=value` overrides (a sweep's, too many or too long for argv). */
export function readSetFile(file: string | undefined): string[] {
  if (file === undefined) return [];
  let sets: unknown;
  try {
    sets = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new GtaError(`--set-file ${file}: cannot read a JSON list (${(e as Error).message.split('\n')[0]})`);
  }
  if (!Array.isArray(sets) || !sets.every((x) => typeof x === 'string')) throw new GtaError(`--set-file ${file}: expected a JSON list of key.path=value strings`);
  return sets as string[];
}

export async function trainCommand(a: TrainArgs): Promise<void> {
  const log = createLogger(a.logLevel);
  stopWithParent();
  const overrides = a.backend ? [...a.set, `backend=${a.backend}`] : a.set;
  if (a.resume !== undefined && a.config !== undefined) throw new GtaError('give --config (a new run) or --resume (continue one), not both');
  if (a.resume === undefined && a.config === undefined) throw new GtaError('gta train needs --config FILE (or --resume RUN_DIR|latest)');
  const nproc = a.nproc ?? 1;
  if (!(Number.isInteger(nproc) && nproc >= 1)) throw new GtaError(`--nproc must be a positive integer, got ${a.nproc}`);
  if (nproc > 1 && worldEnv()) throw new GtaError('--nproc starts local ranks itself; under a launcher that sets RANK and WORLD_SIZE, leave it out');
  if (nproc > 1) {
    // a bad config or resume target is one line here, before any rank starts
    if (a.resume !== undefined) openResume(a.resume, 'train', TrainConfigSchema, overrides);
    else loadConfig(TrainConfigSchema, a.config!, overrides);
    return launchRanks(nproc, withoutNproc(a.argv ?? process.argv.slice(2)));
  }
  const w = await joinWorld();
  if (!w.lead) return followRank(a, overrides, log);
  let run: RunDir;
  let config: TrainConfig;
  let resumeFrom: string | undefined;
  let prepared;
  if (a.resume !== undefined) {
    let step: number;
    ({ run, resumeFrom, config, step } = openResume(a.resume, 'train', TrainConfigSchema, overrides));
    await lockRunDir(run.dir, 'gta train --resume');
    checkResume(resumeFrom);
    prepared = await prepare(config, log, resumeFrom);
    run.resumeAt(step, overrides, configHash(config));
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
      // what the run is, for sweeps that find it again by name (src/run/config_identity.ts)
      config_sha256: configHash(config),
      backend: prepared.backend,
      init: prepared.init,
      model: { params: prepared.model.numParams, arch: prepared.model.arch },
      dataset: { name: prepared.data.name, labels: prepared.data.labels, sizes: { train: prepared.data.train.length, dev: prepared.data.dev.length, test: prepared.data.test.length }, dev_source: prepared.data.devSource },
      started: new Date().toISOString(),
      ...(w.size > 1 ? { world_size: w.size } : {}),
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
      const f = summary.final!;
      return `${run.dir}\n${f.split}: accuracy ${f.accuracy.toFixed(4)}  f1_weighted ${f.f1_weighted.toFixed(4)}  generate_accuracy ${f.generate_accuracy.toFixed(4)}  invalid ${f.invalid_rate.toFixed(4)}  (${summary.steps} steps, ${formatDuration(summary.wall_time_s)})\n`;
    },
  );
}

/**
 * A rank past the first: it trains its shard of every step exactly as rank 0 does, but the run
 * directory is rank 0's; its own bookkeeping goes to a scratch folder, removed at the end.
 */
async function followRank(a: TrainArgs, overrides: string[], log: ReturnType<typeof createLogger>): Promise<void> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), `gta-rank${world().rank}-`));
  const signals = stopOnSignals(() => undefined);
  try {
    const { config, resumeFrom } = a.resume !== undefined ? openResume(a.resume, 'train', TrainConfigSchema, overrides) : { config: loadConfig(TrainConfigSchema, a.config!, overrides).config, resumeFrom: undefined };
    const prepared = await prepare(config, log, resumeFrom);
    const summary = await finetune(config, prepared, RunDir.createAt(path.join(scratch, 'run')), log, signals.requested, resumeFrom);
    if (summary.status === 'interrupted') throw new GtaError(`interrupted at step ${summary.steps}`, 130);
  } finally {
    signals.dispose();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
