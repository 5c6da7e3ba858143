/**
 * What a GRPO update computes and logs, checked by hand: dr_grpo's constant normaliser, the mean over
 * num_iterations updates, TRL's reward std, GTA's guess target in free decoding, and dropout's
 * default and refusal in the RL modes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { RlSchema, TrainConfigSchema } from '../src/config/schema.js';
import { maxStructuredLength, structureSpec } from '../src/task/structure.js';
import { guessExample } from '../src/train/gta.js';
import { rlUpdate, rollout, type RlContext, type RlExample } from '../src/train/rl.js';
import { Trainer } from '../src/train/trainer.js';
import { selectRlTokens } from '../src/train/rl_tokens.js';
import { Rng } from '../src/util/rng.js';
import { stdUnbiased } from '../src/util/stats.js';
import { tinyModel, tinyTokenizer, tmpDir, useWasm } from './helpers/tiny.js';

const OPTIM = { lr: 1e-2, weight_decay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, warmup_steps: 0, schedule: 'constant' as const, min_lr_ratio: 1, grad_clip: 1 };

async function setup(rl: Record<string, unknown>) {
  await useWasm();
  const tok = tinyTokenizer();
  const model = tinyModel(tok, 5);
  // 'very ...' answers make two choices and 'good' one, so completions train different numbers of tokens
  const labels = ['good', 'very bad', 'very good'];
  const cfg = RlSchema.parse({ group_size: 4, think_max_tokens: 2, ...rl });
  const spec = structureSpec(tok, 'rl', labels, cfg.think_max_tokens);
  const ctx: RlContext = { model, spec, format: 'rl', rl: cfg, padId: tok.padId, rng: new Rng(1), accumSteps: 1 };
  const batch: RlExample[] = ['good movie', 'the plot was bad', 'a very great film'].map((t, i) => ({ index: i, prompt: [tok.bosId, ...tok.encode(t)], gold: i % 3, goldTokens: tok.encode(labels[i % 3]) }));
  return { tok, model, ctx, batch, spec, trainer: new Trainer(model, OPTIM) };
}

test('dr_grpo divides by the number of completions times the longest completion the decoding allows, not the longest in the batch', async () => {
  const { ctx, batch, spec, model, trainer } = await setup({ loss_type: 'dr_grpo' });
  const r = rollout(ctx, batch);
  const u = await rlUpdate(ctx, trainer, r, 0);
  // on-policy the ratio is 1, so every trained token's loss is -A of its completion
  const sel = selectRlTokens(r.completions, () => 0, { format: 'rl', maskTruncated: false, spec, vocab: model.arch.vocab_size });
  const perCompletion = r.completions.map((_, i) => Array.from(sel.mask.slice(i * sel.L, (i + 1) * sel.L)).reduce((a, b) => a + b, 0));
  const bound = maxStructuredLength(spec);
  assert.ok(bound > sel.L, `bound ${bound} vs longest selected ${sel.L}: the test needs them apart`);
  assert.ok(new Set(perCompletion).size > 1, 'completions of different trained lengths (else the loss is 0 whatever the normaliser)');
  const expected = -r.advantages.reduce((a, adv, i) => a + adv * perCompletion[i], 0) / (r.completions.length * bound);
  assert.ok(Math.abs(expected) > 1e-4, `expected ${expected}`);
  assert.ok(Math.abs(u.metrics['train/loss_rl'] - expected) < 1e-6, `${u.metrics['train/loss_rl']} vs ${expected}`);
  model.dispose();
});

test('with num_iterations > 1 the logged loss, KL, clip ratio, entropy and gradient norm are the means over the updates', async () => {
  const { ctx, batch, model, trainer } = await setup({ num_iterations: 3, beta: 0.1 });
  ctx.ref = model.frozenCopy();
  const u = await rlUpdate(ctx, trainer, rollout(ctx, batch), 1e-2);
  assert.equal(u.iterations.length, 3);
  for (const k of ['train/loss_rl', 'kl', 'clip_ratio', 'entropy', 'train/grad_norm']) {
    const mean = u.iterations.reduce((a, m) => a + m[k], 0) / 3;
    assert.ok(Math.abs(u.metrics[k] - mean) < 1e-12, `${k}: ${u.metrics[k]} vs ${mean}`);
  }
  assert.notEqual(u.metrics['train/loss_rl'], u.iterations[2]['train/loss_rl'], 'the updates differ, so the mean is not the last');
  model.dispose();
});

test("reward/total/std is TRL's mean of the groups' stds; components use the unbiased std over the batch", async () => {
  const { ctx, batch, model } = await setup({ rewards: { accuracy: 1, format: 0.5 } });
  const r = rollout(ctx, batch);
  const G = 4;
  const groups = batch.map((_, g) => r.scored.total.slice(g * G, (g + 1) * G));
  const expected = groups.reduce((a, g) => a + stdUnbiased(g), 0) / groups.length;
  assert.ok(Math.abs(r.metrics['reward/total/std'] - expected) < 1e-12, `${r.metrics['reward/total/std']} vs ${expected}`);
  assert.ok(Math.abs(r.metrics['reward/accuracy/std'] - stdUnbiased(r.scored.components.accuracy)) < 1e-12);
  model.dispose();
});

test("GTA's guess cross-entropy trains the guess tags in free decoding, where the decoder does not force them", () => {
  const e: RlExample = { index: 0, prompt: [1, 20, 21], gold: 0, goldTokens: [30, 31] };
  const tags = { open: 5, close: 6 };
  assert.deepEqual(guessExample(e, 'structured', tags), { prompt: [1, 20, 21, 5], target: [30, 31] });
  assert.deepEqual(guessExample(e, 'free', tags), { prompt: [1, 20, 21], target: [5, 30, 31, 6] });
});

test('train.dropout: 0.1 by default in sft, 0 in rl and gta, and a config error when set there', () => {
  const dir = tmpDir();
  const file = (mode: string, extra = '') => {
    const f = path.join(dir, `${mode}${extra ? '-x' : ''}.yaml`);
    fs.writeFileSync(f, `mode: ${mode}\ndata: { name: sst2 }\ntrain:\n  steps: 10\n${extra}`);
    return f;
  };
  assert.equal(loadConfig(TrainConfigSchema, file('sft')).config.train.dropout, 0.1);
  assert.equal(loadConfig(TrainConfigSchema, file('gta')).config.train.dropout, 0);
  assert.equal(loadConfig(TrainConfigSchema, file('sft_then_rl')).config.train.dropout, 0.1);
  assert.throws(() => loadConfig(TrainConfigSchema, file('gta', '  dropout: 0.1\n')), /gta-x\.yaml:\d+:\d+: train\.dropout: mode gta trains without dropout/);
});
