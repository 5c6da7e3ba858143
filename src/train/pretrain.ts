/**
 * Causal-LM pretraining of the base model on the benchmarks' training text (dev and test text never
 * enter it) and, with `corpus_file`, the English corpus that `gta corpus build` writes, through the
 * shared loop (loop.ts) with an SFT-style runner whose targets are every token after BOS. Each text becomes one or more sequences that start with BOS, exactly as prompts do at
 * fine-tuning time; the loss covers every token after BOS and the final EOS. A finished run writes
 * the base checkpoint to `output`; an interrupted one continues with `gta pretrain --resume`.
 */
import fs from 'node:fs';
import tf from '../util/tfjs.cjs';
import type { PretrainConfig } from '../config/schema.js';
import { loadDataset } from '../data/load.js';
import { buildInput, disposeInput, targetPositions } from '../model/batch.js';
import { loadCheckpoint, saveCheckpoint } from '../model/checkpoint.js';
import { Transformer } from '../model/transformer.js';
import type { RunSummary } from '../run/files.js';
import type { RunDir } from '../run/run_dir.js';
import { Tokenizer } from '../tokenizer/bpe.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { GtaError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { STREAMS } from '../util/rng.js';
import { Trainer } from './trainer.js';
import { trainLoop, type EvalOutcome } from './loop.js';
import { examplesRunner, lossAtRows, type SftExample } from './sft.js';

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
  // a loop, not push(...lines): spreading 150k lines overflows the call stack
  if (cfg.corpus_file !== undefined) for (const line of readCorpusFile(cfg.corpus_file)) train.push(line);
  return { train, heldOut };
}

export function checkCorpusFile(file: string): void {
  if (!fs.existsSync(file)) throw new GtaError(`corpus_file: ${file} not found; run \`gta corpus build --out ${file}\` first`);
}

/** The lines of a `gta corpus build` file; held-out perplexity stays on the benchmarks' dev text, so runs with and without it compare. */
export function readCorpusFile(file: string): string[] {
  checkCorpusFile(file);
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
}

/** BOS + tokens + EOS, cut into pieces of at most seqLen tokens, each starting with BOS. */
export function lmSequences(tok: TextTokenizer, texts: string[], seqLen: number): SftExample[] {
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

/** With `resumeFrom` (a training checkpoint of an interrupted pretraining run), the weights and tokenizer come from there. */
export async function pretrain(cfg: PretrainConfig, run: RunDir, log: Logger, shouldStop: () => boolean, resumeFrom?: string): Promise<RunSummary> {
  const corpus = await loadCorpus(cfg);
  let tokenizer: TextTokenizer;
  let model: Transformer;
  if (resumeFrom) {
    ({ model, tokenizer } = loadCheckpoint(resumeFrom));
  } else {
    tokenizer = Tokenizer.train(corpus.train, { vocabSize: cfg.model.vocab_size });
    model = Transformer.init({ ...cfg.model, vocab_size: tokenizer.vocabSize }, cfg.seed);
  }
  const seqLen = Math.min(cfg.train.seq_len, model.arch.max_seq_len);
  const seqs = lmSequences(tokenizer, corpus.train, seqLen);
  const heldOut = STREAMS.heldOut(cfg.seed).shuffle(lmSequences(tokenizer, corpus.heldOut, seqLen)).slice(0, cfg.train.eval_sequences);
  log.info({ texts: corpus.train.length, sequences: seqs.length, tokens: seqs.reduce((a, s) => a + s.target.length + 1, 0), vocab: tokenizer.vocabSize }, 'corpus ready');
  const trainer = new Trainer(model, cfg.train.optim);
  const { train: t } = cfg;
  const perplexity = (): EvalOutcome => {
    const loss = heldOutLoss(model, heldOut, tokenizer.padId, t.batch_size);
    return { record: { 'eval/loss_lm': loss, 'eval/perplexity': Math.exp(loss) }, summary: { held_out_loss: loss, held_out_perplexity: Math.exp(loss) } };
  };
  const r = await trainLoop({
    cfg: { seed: cfg.seed, steps: t.steps, log_every: t.log_every, eval_every: t.eval_every, checkpoint_every: t.checkpoint_every, on_nonfinite: t.on_nonfinite, optim: t.optim },
    runner: examplesRunner(seqs, t.batch_size, trainer, tokenizer.padId, t.dropout, cfg.seed, 'train/loss_lm'),
    model,
    tokenizer,
    optimizer: trainer.optimizer,
    evaluator: { split: 'dev', periodic: perplexity, final: perplexity },
    run,
    log,
    shouldStop,
    label: 'pretrain',
    resumeFrom,
  });
  const summary = { status: r.status, steps: r.steps, wall_time_s: r.wall_time_s, train_tokens: r.train_tokens, params: model.numParams };
  if (r.status !== 'finished') return { ...summary, checkpoint: run.checkpoint('latest') };
  // Only a finished run replaces the base checkpoint.
  saveCheckpoint(cfg.output, model, tokenizer, { kind: 'base', step: r.steps });
  return { ...summary, ...r.final!.summary, checkpoint: cfg.output };
}

/** Mean token loss over held-out sequences (no gradient, no dropout). */
export function heldOutLoss(model: Transformer, seqs: SftExample[], padId: number, batchSize: number): number {
  const { nats, tokens } = heldOutNll(model, seqs, padId, batchSize);
  return tokens > 0 ? nats / tokens : NaN;
}

/** Summed negative log-likelihood (nats) of every target token of `seqs`, and their count. */
export function heldOutNll(model: Transformer, seqs: SftExample[], padId: number, batchSize: number): { nats: number; tokens: number } {
  let nats = 0;
  let tokens = 0;
  for (let s = 0; s < seqs.length; s += batchSize) {
    const batch = seqs.slice(s, s + batchSize).map((e) => [...e.prompt, ...e.target]);
    const { input, layout } = buildInput(batch, padId);
    const { rows, targets } = targetPositions(batch, batch.map(() => 1), layout);
    const loss = tf.tidy(() => lossAtRows(model, model.forward(input).hidden, rows, targets));
    nats += loss.dataSync()[0] * targets.length;
    tokens += targets.length;
    loss.dispose();
    disposeInput(input);
  }
  return { nats, tokens };
}

/**
 * Held-out quality of a base on the complete dev text of `texts` (each text whole, as lmSequences cuts
 * it). Perplexity is per token of the base's own tokenizer, so it compares bases that share one;
 * bits per byte (the nats over the UTF-8 bytes of the texts, one more byte per text for its EOS) compares
 * any two.
 */
export function heldOutQuality(model: Transformer, tok: TextTokenizer, texts: string[], seqLen: number, batchSize: number) {
  const { nats, tokens } = heldOutNll(model, lmSequences(tok, texts, seqLen), tok.padId, batchSize);
  const bytes = texts.reduce((a, t) => a + Buffer.byteLength(t, 'utf8') + 1, 0);
  return { texts: texts.length, bytes, tokens, loss: nats / tokens, perplexity: Math.exp(nats / tokens), bits_per_byte: nats / Math.LN2 / bytes };
}
