/**
 * `gta pretrain --config FILE`: trains the base LM and writes its checkpoint (and a run directory with
 * its curves and training checkpoints); `gta pretrain --resume DIR|latest` continues an interrupted one.
 */
import { initBackend } from '../backend/select.js';
import { loadConfig } from '../config/load.js';
import { PretrainConfigSchema, type PretrainConfig } from '../config/schema.js';
import { BUILTIN_DATASETS } from '../data/registry.js';
import { provenance, RunDir, RUN_FILES } from '../run/run_dir.js';
import { checkCorpusFile, pretrain } from '../train/pretrain.js';
import { GtaError } from '../util/errors.js';
import { createLogger } from '../util/log.js';
import { formatDuration } from '../util/format.js';
import { checkResume, openResume, runToEnd } from './run_lifecycle.js';

export async function pretrainCommand(a: { config?: string; resume?: string; set: string[]; backend?: string; logLevel: string }): Promise<void> {
  const log = createLogger(a.logLevel);
  const overrides = a.backend ? [...a.set, `backend=${a.backend}`] : a.set;
  if ((a.resume === undefined) === (a.config === undefined)) throw new GtaError('gta pretrain needs --config FILE (a new run) or --resume RUN_DIR|latest (continue one)');
  let run: RunDir;
  let config: PretrainConfig;
  let resumeFrom: string | undefined;
  if (a.resume !== undefined) {
    let step: number;
    ({ run, resumeFrom, config, step } = openResume(a.resume, 'pretrain', PretrainConfigSchema, overrides));
    checkResume(resumeFrom);
    await startBackend(config, log);
    run.resumeAt(step, overrides);
    log.info({ run: run.dir, step }, 'resuming run');
  } else {
    const loaded = loadConfig(PretrainConfigSchema, a.config!, overrides);
    config = loaded.config;
    const unknown = config.corpus.find((n) => !BUILTIN_DATASETS.includes(n));
    if (unknown) throw new GtaError(`${a.config}: corpus: unknown dataset '${unknown}' (built-in datasets: ${BUILTIN_DATASETS.join(', ')})`);
    // before the run directory exists, so a missing corpus leaves no failed run behind
    if (config.corpus_file !== undefined) checkCorpusFile(config.corpus_file);
    const backend = await startBackend(config, log);
    run = RunDir.create('runs', config.name);
    run.writeFile(RUN_FILES.config, loaded.resolvedYaml);
    run.writeJson(RUN_FILES.info, { status: 'running', mode: 'pretrain', seed: config.seed, config_file: a.config, overrides, backend, started: new Date().toISOString(), ...provenance() });
    log.info({ run: run.dir }, 'run directory');
  }
  await runToEnd(
    run,
    'pretrain',
    log,
    (shouldStop) => pretrain(config, run, log, shouldStop, resumeFrom),
    (summary) => `${summary.checkpoint}\nheld-out perplexity ${summary.held_out_perplexity!.toFixed(2)} after ${summary.steps} steps (${formatDuration(summary.wall_time_s)}); run: ${run.dir}\n`,
  );
}

async function startBackend(config: PretrainConfig, log: ReturnType<typeof createLogger>) {
  const backend = await initBackend(config.backend);
  log.info({ backend: backend.name, device: backend.device }, 'backend ready');
  return backend;
}
