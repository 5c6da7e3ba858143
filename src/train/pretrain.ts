/**
 * Causal-LM pretraining of the base model on the benchmarks' training text (dev and test text never
 * enter it). Each text becomes one or more sequences that start with BOS, exactly as prompts do at
 * fine-tuning time; the loss covers every token after BOS and the final EOS.
 */
import * as tf from '@tensorflow/tfjs';
import type { PretrainConfig } from '../config/schema.js';
import { loadDataset } from '../data/load.js';
import { Transformer } from '../model/transformer.js';
import { saveCheckpoint } from '../model/checkpoint.js';
import type { RunDir } from '../report/run_dir.js';
import { Tokenizer } from '../tokenizer/bpe.js';
import type { Logger } from '../util/log.js';
import { startProgress } from '../util/progress.js';
import { Rng } from '../util/rng.js';
import { AdamW } from './adamw.js';
import { buildInput, disposeInput, targetPositions } from './batch.js';
import { BatchSampler } from './sampler.js';
import { learningRate } from './schedule.js';
import { lossAtRows, sftStep, type SftExample } from './sft.js';

export interface Corpus {
  train: string[];
  /** Held-out text (the corpora's dev splits) for perplexity only. */
  heldOut: string[];
}

export async function loadCorpus(cfg: PretrainConfig): Promise<Corpus> {
  const train: string[] = [];
  const heldOut: string[] = [];
  for (const name of cfg.corpus) {
    const d = await loadDataset(
      { name, format: 'auto', text_column: 'text', label_column: 'label', dev_fraction: cfg.dev_fraction, split_seed: cfg.split_seed, max_text_tokens: 1 },
      cfg.split_seed,
    );
    for (const e of d.train) train.push(e.text);
    for (const e of d.dev) heldOut.push(e.text);
  }
  return { train, heldOut };
}

/** BOS + tokens + EOS, cut into pieces of at most seqLen tokens, each starting with BOS. */
export function lmSequences(tok: Tokenizer, texts: string[], seqLen: number): SftExample[] {
  const out: SftExample[] = [];
  for (const text of texts) {
    const ids = [...tok.encode(text), tok.eosId];
    for (let s = 0; s < ids.length; s += seqLen - 1) {
      const piece = ids.slice(s, s + seqLen - 1);
      if (piece.length > 0) out.push({ prompt: [tok.bosId], target: piece });
    }
  }
  return out;
}

export async function pretrain(cfg: PretrainConfig, run: RunDir, log: Logger, shouldStop: () => boolean): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  const elapsed = () => Math.round((performance.now() - t0) / 10) / 100;
  const corpus = await loadCorpus(cfg);
  const tokenizer = Tokenizer.train(corpus.train, { vocabSize: cfg.model.vocab_size });
  const arch = { ...cfg.model, vocab_size: tokenizer.vocabSize };
  const seqLen = Math.min(cfg.train.seq_len, arch.max_seq_len);
  const seqs = lmSequences(tokenizer, corpus.train, seqLen);
  const heldOut = new Rng(cfg.seed).shuffle(lmSequences(tokenizer, corpus.heldOut, seqLen)).slice(0, cfg.train.eval_sequences);
  log.info({ texts: corpus.train.length, sequences: seqs.length, tokens: seqs.reduce((a, s) => a + s.target.length + 1, 0), vocab: tokenizer.vocabSize }, 'corpus ready');
  const model = Transformer.init(arch, cfg.seed);
  const optimizer = new AdamW(model.params, cfg.train.optim);
  const sampler = new BatchSampler(seqs.map((s) => s.target.length + 1), cfg.train.batch_size, cfg.seed);
  const dropoutRng = new Rng(cfg.seed ^ 0x5eed);
  const total = cfg.train.steps;
  const bar = startProgress('pretrain', total, log);
  let pos = { epoch: 0, batch: 0 };
  let window = { loss: 0, steps: 0, tokens: 0, start: performance.now() };
  let tokensSeen = 0;
  let step = 0;
  let lastHeldOut = NaN;
  while (step < total && !shouldStop()) {
    await new Promise((r) => setImmediate(r));
    const { indices, next } = sampler.next(pos);
    pos = next;
    const lr = learningRate(step, total, cfg.train.optim);
    const r = sftStep(model, optimizer, indices.map((i) => seqs[i]), lr, tokenizer.padId, { dropout: cfg.train.dropout, rng: dropoutRng });
    if (!Number.isFinite(r.loss)) throw new Error(`non-finite loss at step ${step + 1}`);
    step += 1;
    tokensSeen += r.tokens;
    window.loss += r.loss;
    window.steps += 1;
    window.tokens += r.tokens;
    if (step % cfg.train.log_every === 0 || step === total) {
      const rec = {
        step,
        epoch: Math.round((pos.epoch + pos.batch / sampler.batchesPerEpoch) * 1000) / 1000,
        time_s: elapsed(),
        split: 'train',
        'train/loss_lm': window.loss / window.steps,
        'train/lr': lr,
        'train/grad_norm': r.gradNorm,
        'perf/tokens_per_s': window.tokens / ((performance.now() - window.start) / 1000),
        'perf/tokens_seen': tokensSeen,
      };
      run.appendJsonl('metrics.jsonl', rec);
      bar.update(step, { loss: rec['train/loss_lm'], 'tok/s': Math.round(rec['perf/tokens_per_s']) });
      window = { loss: 0, steps: 0, tokens: 0, start: performance.now() };
    }
    if (step % cfg.train.eval_every === 0 || step === total) {
      lastHeldOut = heldOutLoss(model, heldOut, tokenizer.padId, cfg.train.batch_size);
      run.appendJsonl('metrics.jsonl', { step, time_s: elapsed(), split: 'dev', 'eval/loss_lm': lastHeldOut, 'eval/perplexity': Math.exp(lastHeldOut) });
    }
  }
  bar.stop();
  const finished = step === total;
  // Only a finished run replaces the base checkpoint; an interrupted one is kept in its run directory.
  const out = finished ? cfg.output : run.file('checkpoints/latest');
  saveCheckpoint(out, model, tokenizer, { kind: 'base', step });
  return {
    status: finished ? 'finished' : 'interrupted',
    steps: step,
    wall_time_s: elapsed(),
    train_tokens: tokensSeen,
    params: model.numParams,
    held_out_loss: lastHeldOut,
    held_out_perplexity: Math.exp(lastHeldOut),
    checkpoint: out,
  };
}

/** Mean token loss over held-out sequences (no gradient, no dropout). */
export function heldOutLoss(model: Transformer, seqs: SftExample[], padId: number, batchSize: number): number {
  let sum = 0;
  let n = 0;
  for (let s = 0; s < seqs.length; s += batchSize) {
    const batch = seqs.slice(s, s + batchSize).map((e) => [...e.prompt, ...e.target]);
    const { input, layout } = buildInput(batch, padId);
    const { rows, targets } = targetPositions(batch, batch.map(() => 1), layout);
    const loss = tf.tidy(() => lossAtRows(model, model.forward(input).hidden, rows, targets));
    sum += loss.dataSync()[0] * targets.length;
    n += targets.length;
    loss.dispose();
    disposeInput(input);
  }
  return n > 0 ? sum / n : NaN;
}
