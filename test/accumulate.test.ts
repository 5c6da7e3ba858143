/**
 * Gradient accumulation (train.grad_accum_steps, src/train/accumulate.ts): the summed gradients of a
 * batch's micro-batches equal the whole batch's within 1e-6, for SFT (micro-batches of unequal target
 * counts) and for the RL update under every loss normaliser (whole prompt groups per micro-batch), and
 * a whole GTA step logs what it logs without accumulation. Bad values are one-line config errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tf from '../src/util/tfjs.cjs';
import { loadConfig } from '../src/config/load.js';
import { RlSchema, TrainConfigSchema } from '../src/config/schema.js';
import { structureSpec } from '../src/task/structure.js';
import { microBatches } from '../src/train/accumulate.js';
import type { Grads } from '../src/train/grad_constraint.js';
import { meanOf, PolicyGradients, rollout, type RlContext, type RlExample } from '../src/train/rl.js';
import { Trainer } from '../src/train/trainer.js';
import { sftGrads } from '../src/train/sft.js';
import { Rng } from '../src/util/rng.js';
import { GtaError } from '../src/util/errors.js';
import { tinyModel, tinyTokenizer, tmpDir, useWasm } from './helpers/tiny.js';

const OPTIM = { lr: 1e-2, weight_decay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, warmup_steps: 0, schedule: 'constant' as const, min_lr_ratio: 1, grad_clip: 1 };
const TOL = 1e-6;

function assertClose(a: Map<string, Float32Array>, b: Map<string, Float32Array>, what: string): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  let max = 0;
  for (const [k, x] of a) {
    const y = b.get(k)!;
    for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs(x[i] - y[i]));
  }
  assert.ok(max <= TOL, `${what}: gradients differ by ${max}`);
}

const read = (g: Grads) => new Map(Object.entries(g).map(([k, t]) => [k, t.dataSync() as Float32Array]));

test('microBatches: contiguous, whole groups, as even as they divide, never empty', () => {
  assert.deepEqual(microBatches([1, 2, 3, 4, 5], 2), [[1, 2, 3], [4, 5]]);
  assert.deepEqual(microBatches([1, 2, 3, 4, 5, 6], 2, 2), [[1, 2, 3, 4], [5, 6]]);
  assert.deepEqual(microBatches([1, 2], 5), [[1], [2]]);
  assert.deepEqual(microBatches([1, 2, 3], 1), [[1, 2, 3]]);
});

test('sft: micro-batches of unequal target counts sum to the whole batch\'s gradient and loss', async () => {
  await useWasm();
  const tok = tinyTokenizer();
  const model = tinyModel(tok, 2);
  const texts = ['good movie', 'the plot was very bad', 'a film', 'great great film', 'awful', 'the movie is very good'];
  // targets of 1 to 5 words: a micro-batch's share of the target tokens is not its share of the examples
  const targets = ['good', 'the movie was very bad', 'a', 'great film', 'awful plot', 'very good'];
  const batch = texts.map((t, i) => ({ prompt: [tok.bosId, ...tok.encode(t)], target: tok.encode(targets[i]) }));
  const whole = sftGrads(model, batch, tok.padId, {});
  const wholeGrads = read(whole.grads);
  for (const parts of [2, 4]) {
    const acc = sftGrads(model, batch, tok.padId, {}, parts);
    assert.ok(Math.abs(acc.loss - whole.loss) <= TOL, `loss ${acc.loss} vs ${whole.loss}`);
    assert.equal(acc.targets, whole.targets);
    assertClose(read(acc.grads), wholeGrads, `${parts} parts`);
    tf.dispose(Object.values(acc.grads));
  }
  tf.dispose(Object.values(whole.grads));
  model.dispose();
});

for (const lossType of ['grpo', 'bnpo', 'dr_grpo', 'dapo'] as const) {
  test(`rl (${lossType}): micro-batches of whole prompt groups sum to the whole batch's gradient, and log the same loss and metrics`, async () => {
    await useWasm();
    const tok = tinyTokenizer();
    const model = tinyModel(tok, 5);
    const labels = ['good', 'very bad', 'very good'];
    const cfg = RlSchema.parse({ group_size: 4, think_max_tokens: 2, loss_type: lossType, num_iterations: 2, beta: 0.1 });
    const spec = structureSpec(tok, 'rl', labels, cfg.think_max_tokens);
    const ctx = (accumSteps: number): RlContext => ({ model, ref: model.frozenCopy(), spec, format: 'rl', rl: cfg, padId: tok.padId, rng: new Rng(1), accumSteps });
    const batch: RlExample[] = ['good movie', 'the plot was bad', 'a very great film'].map((t, i) => ({ index: i, prompt: [tok.bosId, ...tok.encode(t)], gold: i % 3, goldTokens: tok.encode(labels[i % 3]) }));
    const r = rollout(ctx(1), batch);
    // lr 0: the weights stay, so each update sees the same model; each update's RL gradient is recorded
    const run = async (accumSteps: number) => {
      const c = ctx(accumSteps);
      const trainer = new Trainer(model, OPTIM);
      const grads: Map<string, Float32Array>[] = [];
      const iterations: Record<string, number>[] = [];
      const pg = await PolicyGradients.start(c, r);
      for (let it = 0; it < cfg.num_iterations; it++) {
        const g = await pg.next();
        grads.push(read(g.grads));
        iterations.push({ 'train/loss_rl': g.loss, ...g.metrics, 'train/grad_norm': trainer.applyStep(g.grads, {}, 0) });
      }
      pg.dispose();
      c.ref!.dispose();
      trainer.dispose();
      return { u: { metrics: meanOf(iterations) }, grads };
    };
    const whole = await run(1);
    for (const parts of [2, 3]) {
      const acc = await run(parts);
      acc.grads.forEach((g, i) => assertClose(g, whole.grads[i], `${parts} parts, iteration ${i}`));
      for (const k of ['train/loss_rl', 'kl', 'clip_ratio', 'entropy', 'train/grad_norm']) {
        assert.ok(Math.abs(acc.u.metrics[k] - whole.u.metrics[k]) <= TOL, `${k}: ${acc.u.metrics[k]} vs ${whole.u.metrics[k]}`);
      }
    }
    model.dispose();
  });
}

test('grad_accum_steps: more micro-batches than a batch has examples or prompts is a one-line config error naming the key', () => {
  const dir = tmpDir('accum-');
  const file = path.join(dir, 'c.yaml');
  fs.writeFileSync(file, 'mode: gta\ndata: { name: sst2 }\ntrain: { batch_size: 16, grad_accum_steps: 3 }\nrl: { group_size: 8 }\n');
  assert.throws(() => loadConfig(TrainConfigSchema, file), (e: Error) => e instanceof GtaError && /train\.grad_accum_steps/.test(e.message) && /2 prompts/.test(e.message) && !e.message.includes('\n'));
  fs.writeFileSync(file, 'mode: sft\ndata: { name: sst2 }\ntrain: { batch_size: 4, grad_accum_steps: 4 }\n');
  assert.doesNotThrow(() => loadConfig(TrainConfigSchema, file));
  fs.rmSync(dir, { recursive: true, force: true });
});
