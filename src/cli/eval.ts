/** `gta eval --run DIR [--split test] [--checkpoint best]`: re-scores a run's checkpoint on a split. */
import fs from 'node:fs';
import { initBackend, type BackendInfo } from '../backend/select.js';
import { setPrecision, type Precision } from '../backend/torch/precision.js';
import { loadConfig } from '../config/load.js';
import { TrainConfigSchema } from '../config/schema.js';
import { loadDataset } from '../data/load.js';
import { evalFormat, evaluate } from '../eval/evaluate.js';
import { loadCheckpoint } from '../model/checkpoint.js';
import { RunDir, RUN_FILES } from '../run/run_dir.js';
import { promptBuilder } from '../task/prompt.js';
import { GtaError } from '../util/errors.js';
import { createLogger, type Logger } from '../util/log.js';
import { startProgress } from '../util/progress.js';

export interface EvalArgs {
  run: string;
  split: 'dev' | 'test';
  checkpoint: 'latest' | 'best';
  batchSize?: number;
  backend?: string;
  logLevel: string;
}

export async function evalCommand(a: EvalArgs): Promise<void> {
  const log = createLogger(a.logLevel);
  const run = RunDir.open(a.run);
  const configFile = run.file(RUN_FILES.config);
  if (!fs.existsSync(configFile)) throw new GtaError(`${a.run}: not a gta run directory (no ${RUN_FILES.config})`);
  const ckpt = run.checkpoint(a.checkpoint);
  if (!fs.existsSync(ckpt)) throw new GtaError(`${a.run}: has no '${a.checkpoint}' checkpoint (${ckpt})`);
  const { config } = loadConfig(TrainConfigSchema, configFile, a.backend ? [`backend=${a.backend}`] : []);
  const backend = await initBackend(config.backend);
  evalPrecision(config.train.precision, backend, log);
  const data = await loadDataset(config.data, config.data.split_seed);
  const examples = a.split === 'test' ? data.test : data.dev;
  if (examples.length === 0) throw new GtaError(`dataset ${data.name} has no ${a.split} split`);
  const { model, tokenizer, meta } = loadCheckpoint(ckpt);
  const bar = startProgress(`eval ${a.split}`, examples.length, log);
  const res = evaluate(
    {
      model,
      tokenizer,
      prompts: promptBuilder(tokenizer, config.prompt.template, config.data.max_text_tokens),
      labels: data.labels,
      batchSize: a.batchSize ?? config.eval.batch_size,
      maxNewTokens: config.eval.max_new_tokens,
      ...evalFormat(config),
      onProgress: (d) => bar.update(d),
    },
    examples,
  );
  bar.stop();
  const name = `eval-${a.split}-${a.checkpoint}`;
  run.writeJson(`${name}.json`, {
    split: a.split,
    checkpoint: a.checkpoint,
    step: meta.step,
    backend,
    examples_per_s: res.examplesPerSecond,
    evaluated: new Date().toISOString(),
    ...res.metrics,
  });
  run.writeFile(`${name}.predictions.jsonl`, res.predictions.map((p) => JSON.stringify(p)).join('\n') + '\n');
  const m = res.metrics;
  process.stdout.write(
    `${a.split} (${a.checkpoint}, step ${meta.step}): accuracy ${m.accuracy.toFixed(4)}  f1_weighted ${m.f1_weighted.toFixed(4)}  f1_macro ${m.f1_macro.toFixed(4)}  generate_accuracy ${m.generate_accuracy.toFixed(4)}  invalid ${m.invalid_rate.toFixed(4)}  n=${m.n}\n`,
  );
  log.info({ file: run.file(`${name}.json`) }, 'eval written');
}

/**
 * Scores at the precision the run trained at, so a re-score repeats the run's own final numbers; where
 * this backend cannot (a bf16 run scored on wasm), in float32 with a warning that the numbers may move.
 */
function evalPrecision(precision: Precision, backend: BackendInfo, log: Logger): void {
  try {
    setPrecision(precision, backend);
  } catch (err) {
    if (!(err instanceof GtaError)) throw err;
    setPrecision('fp32', backend);
    log.warn(`the run trained at train.precision ${precision}; scoring in fp32 here (${err.message}): the numbers may differ slightly`);
  }
}
