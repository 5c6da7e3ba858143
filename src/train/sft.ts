/**
 * Mode sft: the model reads the prompt and is trained by cross-entropy on `<answer>LABEL</answer><eos>`
 * only. Logits are computed just at the target positions, which is both why prompt tokens get zero
 * loss and why the output head (vocab x width) costs a few rows per example instead of a full sequence.
 */
import tf from '../util/tfjs.cjs';
import { variableGrads } from '../backend/lean_grads.js';
import { gatherRows } from '../backend/gather_rows.js';
import type { Transformer, ForwardOptions } from '../model/transformer.js';
import { buildInput, disposeInput, targetPositions } from '../model/batch.js';
import { tokenCrossEntropy } from './losses.js';
import type { TrainConfig } from '../config/schema.js';
import { world } from '../parallel/world.js';
import { Rng, STREAMS, type RngState } from '../util/rng.js';
import { addGrads, microBatches, weighted } from './accumulate.js';
import type { Grads } from './grad_constraint.js';
import type { Runner } from './loop.js';
import type { Prepared } from './setup.js';
import type { Trainer } from './trainer.js';
import { parseState, SftStateSchema, type SftState } from './trainer_state.js';

export interface SftExample {
  prompt: number[];
  target: number[];
}

/** Loss on target rows of the hidden states [B, T, d]; `rows` index the flattened [B*T] positions. */
export function lossAtRows(model: Transformer, hidden: tf.Tensor3D, rows: Int32Array, targets: Int32Array): tf.Scalar {
  const [B, T, d] = hidden.shape;
  const h = gatherRows(tf.reshape(hidden, [B * T, d]) as tf.Tensor2D, tf.tensor1d(rows, 'int32')) as tf.Tensor2D;
  return tokenCrossEntropy(model.logits(h), targets);
}

export interface StepResult {
  loss: number;
  gradNorm: number;
  /** Real (non-padding) tokens in the batch. */
  tokens: number;
}

/**
 * Loss and gradients (by parameter name) of SFT on a batch, in `parts` micro-batches (train.grad_accum_steps:
 * each one's loss weighted by its share of the batch's target tokens, so the summed gradient is the
 * batch's); the caller disposes the gradients. The loss is the mean over `targets` target tokens (what a
 * data-parallel mean weighs this batch by).
 */
export function sftGrads(model: Transformer, batch: SftExample[], padId: number, fwd: ForwardOptions, parts = 1): { loss: number; grads: Record<string, tf.Tensor>; tokens: number; targets: number } {
  const targetCount = batch.reduce((a, e) => a + e.target.length, 0);
  let grads: Grads | undefined;
  let loss = 0;
  for (const micro of microBatches(batch, parts)) {
    const seqs = micro.map((e) => [...e.prompt, ...e.target]);
    const { input, layout } = buildInput(seqs, padId);
    const { rows, targets } = targetPositions(seqs, micro.map((e) => e.prompt.length), layout);
    const share = micro.length === batch.length ? 1 : targets.length / targetCount;
    const r = variableGrads(() => weighted(lossAtRows(model, model.forward(input, fwd).hidden, rows, targets), share));
    loss += r.value.dataSync()[0];
    r.value.dispose();
    disposeInput(input);
    grads = addGrads(grads, model.byParamName(r.grads));
  }
  return { loss, grads: grads!, tokens: batch.reduce((a, e) => a + e.prompt.length + e.target.length, 0), targets: targetCount };
}

/** sftGrads on this rank's shard, then the gradients and loss as means over every rank's target tokens (the caller disposes the gradients). */
export async function meanSftGrads(model: Transformer, batch: SftExample[], padId: number, fwd: ForwardOptions, parts = 1): Promise<{ loss: number; grads: Grads; tokens: number }> {
  const local = sftGrads(model, batch, padId, fwd, parts);
  const { grads, scalars } = await world().meanGrads(local.grads, local.targets, { loss: [local.loss, local.targets] });
  return { loss: scalars.loss, grads, tokens: local.tokens };
}

/** One optimizer step of SFT on a batch (this rank's shard: gradients and loss are the mean over every rank's target tokens); `lossKey` names the loss. */
export async function sftStep(trainer: Trainer, batch: SftExample[], lr: number, padId: number, fwd: ForwardOptions, parts = 1, lossKey = 'train/loss_sft'): Promise<StepResult> {
  const { loss, grads, tokens } = await meanSftGrads(trainer.model, batch, padId, fwd, parts);
  const gradNorm = trainer.applyStep(grads, { [lossKey]: loss }, lr);
  return { loss, gradNorm, tokens };
}

/** Mode sft: cross-entropy on `target(label)` after the prompt (`<answer>LABEL</answer><eos>` by default). */
export function sftRunner(cfg: TrainConfig, p: Prepared, trainer: Trainer, target = (label: string) => p.prompts.answerTarget(label)): Runner {
  const { tokenizer, prompts, data } = p;
  const train = data.train.map((e) => ({ prompt: prompts.prompt(e.text), target: target(data.labels[e.label]) }));
  return examplesRunner(train, cfg.train.batch_size, trainer, tokenizer.padId, cfg.train.dropout, cfg.seed, 'train/loss_sft', cfg.train.grad_accum_steps);
}

/** SFT steps over fixed (prompt, target) examples, dropout masks from the run's dropout stream; pretraining uses it too. */
export function examplesRunner(train: SftExample[], batchSize: number, trainer: Trainer, padId: number, dropout: number, seed: number, lossKey: string, accumSteps = 1): Runner {
  let dropoutRng = STREAMS.dropout(seed, world().rank);
  return {
    lengths: train.map((e) => e.prompt.length + e.target.length),
    batchSize,
    headline: [lossKey],
    async step(indices, lr) {
      const r = await sftStep(trainer, indices.map((i) => train[i]), lr, padId, { dropout, rng: dropoutRng }, accumSteps, lossKey);
      return { metrics: { [lossKey]: r.loss, 'train/grad_norm': r.gradNorm }, tokens: r.tokens };
    },
    state: (): SftState => ({ dropout_rng: dropoutRng.state() }),
    restore: (st) => void (dropoutRng = new Rng(parseState(SftStateSchema, st).dropout_rng)),
  };
}
