/**
 * A finished (or running) run opened for scoring, as `gta eval` and `gta predict` need it: its config,
 * its label list, the backend, and one of its checkpoints loaded with the prompt builder it trained with.
 */
import fs from 'node:fs';
import { initBackend, type BackendInfo } from '../backend/select.js';
import { setPrecision, type Precision } from '../backend/torch/precision.js';
import { loadConfig } from '../config/load.js';
import { TrainConfigSchema, type TrainConfig } from '../config/schema.js';
import { loadDataset } from '../data/load.js';
import { evalFormat, type EvalContext } from '../eval/evaluate.js';
import { loadCheckpoint, type CheckpointMeta } from '../model/checkpoint.js';
import { RunDir, RUN_FILES, type CheckpointName } from '../run/run_dir.js';
import { promptBuilder } from '../task/prompt.js';
import { GtaError } from '../util/errors.js';
import type { Logger } from '../util/log.js';

export interface OpenedRun {
  run: RunDir;
  config: TrainConfig;
  backend: BackendInfo;
  labels: string[];
  meta: CheckpointMeta;
  /** Everything evaluate() and decodeTexts() take but the progress callback. */
  ctx: EvalContext;
}

export async function openRun(dir: string, checkpoint: CheckpointName, o: { backend?: string; batchSize?: number; log?: Logger }): Promise<OpenedRun> {
  const run = RunDir.open(dir);
  const configFile = run.file(RUN_FILES.config);
  if (!fs.existsSync(configFile)) throw new GtaError(`${dir}: not a gta run directory (no ${RUN_FILES.config})`);
  const ckpt = run.checkpoint(checkpoint);
  if (!fs.existsSync(ckpt)) throw new GtaError(`${dir}: has no '${checkpoint}' checkpoint (${ckpt})`);
  const { config } = loadConfig(TrainConfigSchema, configFile, o.backend ? [`backend=${o.backend}`] : []);
  const backend = await initBackend(config.backend);
  scoringPrecision(config.train.precision, backend, o.log);
  // run.json keeps the label list in training's order; a run from before it did reads its data again
  const labels = run.info().dataset?.labels ?? (await loadDataset(config.data, config.data.split_seed)).labels;
  const { model, tokenizer, meta } = loadCheckpoint(ckpt);
  const ctx: EvalContext = {
    model,
    tokenizer,
    prompts: promptBuilder(tokenizer, config.prompt.template, config.data.max_text_tokens, config.prompt.chat),
    labels,
    batchSize: o.batchSize ?? config.eval.batch_size,
    maxNewTokens: config.eval.max_new_tokens,
    ...evalFormat(config),
  };
  return { run, config, backend, labels, meta, ctx };
}

/**
 * Scores at the precision the run trained at, so a re-score repeats the run's own final numbers; where
 * this backend cannot (a bf16 run scored on wasm), in float32 with a warning that the numbers may move.
 */
function scoringPrecision(precision: Precision, backend: BackendInfo, log?: Logger): void {
  try {
    setPrecision(precision, backend);
  } catch (err) {
    if (!(err instanceof GtaError)) throw err;
    setPrecision('fp32', backend);
    log?.warn(`the run trained at train.precision ${precision}; scoring in fp32 here (${err.message}): the numbers may differ slightly`);
  }
}
