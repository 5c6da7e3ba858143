/**
 * The fine-tuning loop shared by the training modes: batches from the seeded sampler, a warmup/decay
 * learning rate, periodic evaluation and checkpoints, metrics.jsonl lines as they happen, and
 * summary.json at the end. The mode decides what one step does (SFT today).
 */
import type { TrainConfig } from '../config/schema.js';
import { subset } from '../data/load.js';
import type { Example } from '../data/types.js';
import { evaluate, type EvalResult } from '../eval/evaluate.js';
import { saveCheckpoint } from '../model/checkpoint.js';
import type { RunDir } from '../report/run_dir.js';
import type { Logger } from '../util/log.js';
import { startProgress } from '../util/progress.js';
import { Rng } from '../util/rng.js';
import { AdamW } from './adamw.js';
import { BatchSampler, type SamplerPosition } from './sampler.js';
import { learningRate } from './schedule.js';
import type { Prepared } from './setup.js';
import { sftStep, type SftExample } from './sft.js';

export interface FinetuneResult {
  summary: Record<string, unknown>;
}

export async function finetune(cfg: TrainConfig, p: Prepared, run: RunDir, log: Logger, shouldStop: () => boolean): Promise<FinetuneResult> {
  const { model, tokenizer, prompts, data } = p;
  const t0 = performance.now();
  const elapsed = () => (performance.now() - t0) / 1000;
  const train: SftExample[] = data.train.map((e) => ({ prompt: prompts.prompt(e.text), target: prompts.answerTarget(data.labels[e.label]) }));
  const sampler = new BatchSampler(
    train.map((e) => e.prompt.length + e.target.length),
    cfg.train.batch_size,
    cfg.seed,
  );
  const totalSteps = cfg.train.steps ?? Math.max(1, Math.round(cfg.train.epochs * sampler.batchesPerEpoch));
  const optimizer = new AdamW(model.params, cfg.train.optim);
  const dropoutRng = new Rng(cfg.seed ^ 0x5eed);
  const evalSplit = cfg.eval.split === 'test' ? data.test : data.dev;
  // Periodic evals score a fixed seeded subset; the final eval scores the whole split.
  const quickEval = subset(evalSplit, cfg.eval.max_examples_during_training, new Rng(cfg.data.split_seed + 17));
  const ckptDir = run.file('checkpoints');
  const runEval = (examples: Example[], label: string): EvalResult => {
    const bar = startProgress(label, examples.length, log);
    const res = evaluate(
      { model, tokenizer, prompts, labels: data.labels, batchSize: cfg.eval.batch_size, maxNewTokens: cfg.eval.max_new_tokens, onProgress: (d) => bar.update(d) },
      examples,
    );
    bar.stop();
    return res;
  };

  let pos: SamplerPosition = { epoch: 0, batch: 0 };
  let best: { step: number; accuracy: number; f1_weighted: number } | undefined;
  let tokensSeen = 0;
  let window = { loss: 0, steps: 0, tokens: 0, start: performance.now() };
  let step = 0;
  let interrupted = false;
  log.info({ steps: totalSteps, batches_per_epoch: sampler.batchesPerEpoch, train_examples: train.length }, 'training');
  const bar = startProgress('train', totalSteps, log);
  const save = (name: string) =>
    saveCheckpoint(`${ckptDir}/${name}`, model, tokenizer, {
      kind: 'training',
      step,
      optimizer,
      trainerState: { step, position: pos, dropout_rng: dropoutRng.state(), tokens_seen: tokensSeen, best: best ?? null },
    });

  while (step < totalSteps) {
    // Let signal handlers run between steps (the step itself is synchronous).
    await new Promise((r) => setImmediate(r));
    if (shouldStop()) {
      interrupted = true;
      break;
    }
    const { indices, next } = sampler.next(pos);
    const lr = learningRate(step, totalSteps, cfg.train.optim);
    const r = sftStep(model, optimizer, indices.map((i) => train[i]), lr, tokenizer.padId, { dropout: cfg.train.dropout, rng: dropoutRng });
    if (!Number.isFinite(r.loss)) throw new Error(`non-finite training loss at step ${step + 1}`);
    pos = next;
    step += 1;
    tokensSeen += r.tokens;
    window.loss += r.loss;
    window.steps += 1;
    window.tokens += r.tokens;
    const epoch = pos.epoch + pos.batch / sampler.batchesPerEpoch;
    if (step % cfg.train.log_every === 0 || step === totalSteps) {
      const secs = (performance.now() - window.start) / 1000;
      const rec = {
        step,
        epoch: round(epoch),
        time_s: round(elapsed()),
        split: 'train',
        'train/loss_sft': window.loss / window.steps,
        'train/lr': lr,
        'train/grad_norm': r.gradNorm,
        'perf/tokens_per_s': window.tokens / secs,
        'perf/tokens_seen': tokensSeen,
      };
      run.appendJsonl('metrics.jsonl', rec);
      bar.update(step, { loss: rec['train/loss_sft'], 'tok/s': Math.round(rec['perf/tokens_per_s']) });
      window = { loss: 0, steps: 0, tokens: 0, start: performance.now() };
    }
    if (step % cfg.train.eval_every === 0 && step < totalSteps) {
      const res = runEval(quickEval, `eval@${step}`);
      run.appendJsonl('metrics.jsonl', evalRecord(step, epoch, elapsed(), cfg.eval.split, res));
      log.info({ step, accuracy: res.metrics.accuracy, f1_weighted: res.metrics.f1_weighted }, 'eval');
      if (!best || res.metrics.accuracy > best.accuracy) {
        best = { step, accuracy: res.metrics.accuracy, f1_weighted: res.metrics.f1_weighted };
        save('best');
      }
    }
    if (step % cfg.train.checkpoint_every === 0 && step < totalSteps) save('latest');
  }
  bar.stop();
  save('latest');
  if (interrupted) {
    return { summary: { status: 'interrupted', steps: step, wall_time_s: elapsed() } };
  }
  const final = runEval(evalSplit, `eval ${cfg.eval.split}`);
  run.appendJsonl('metrics.jsonl', evalRecord(step, pos.epoch + pos.batch / sampler.batchesPerEpoch, elapsed(), cfg.eval.split, final));
  for (const pred of final.predictions) run.appendJsonl('predictions.jsonl', { split: cfg.eval.split, step, ...pred });
  // The final weights count as a candidate for best too (periodic evals used a subset, so compare on that).
  if (!best) {
    best = { step, accuracy: final.metrics.accuracy, f1_weighted: final.metrics.f1_weighted };
    save('best');
  }
  const summary = {
    status: 'finished',
    mode: cfg.mode,
    dataset: data.name,
    steps: step,
    epochs: round(step / sampler.batchesPerEpoch),
    wall_time_s: round(elapsed()),
    train_tokens: tokensSeen,
    final: { split: cfg.eval.split, ...final.metrics },
    best_during_training: best,
  };
  return { summary };
}

export function evalRecord(step: number, epoch: number, time: number, split: string, res: EvalResult): Record<string, unknown> {
  return {
    step,
    epoch: round(epoch),
    time_s: round(time),
    split,
    'eval/n': res.metrics.n,
    'eval/accuracy': res.metrics.accuracy,
    'eval/f1_weighted': res.metrics.f1_weighted,
    'eval/f1_macro': res.metrics.f1_macro,
    'eval/invalid_rate': res.metrics.invalid_rate,
    'perf/eval_examples_per_s': res.examplesPerSecond,
  };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
