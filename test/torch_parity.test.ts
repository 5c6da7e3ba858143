/**
 * An outside check of the model and the training step against PyTorch (as minGPT and llm.c do): on
 * the shipped checkpoints/base, one SFT batch of left-padded sentences gives the same logits at every
 * real position, loss, gradients, gradient norm and parameters after one AdamW step as
 * scripts/torch_reference.py's PyTorch model, to 1e-4 (absolute up to magnitude 1, relative above;
 * the script says why). The Python side builds its own batch from the token ids and loads the weights
 * itself, so the check shares nothing with gta but the checkpoint.
 * Skipped with the reason when no Python has PyTorch; .ci/run installs Debian's python3-torch and sets
 * GTA_PYTORCH_REQUIRED=1 so CI fails instead.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import tf from '../src/util/tfjs.cjs';
import { buildInput, disposeInput } from '../src/model/batch.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { encodeSafetensors, type NamedArray } from '../src/model/safetensors.js';
import { promptBuilder } from '../src/task/prompt.js';
import { AdamW } from '../src/train/adamw.js';
import { sftGrads, type SftExample } from '../src/train/sft.js';
import { repoRoot } from '../src/util/paths.js';
import type { OptimConfig } from '../src/config/schema.js';
import { tmpDir, useWasm } from './helpers/tiny.js';

const TOL = 1e-4;
const script = path.join(repoRoot(), 'scripts', 'torch_reference.py');
const checkpoint = path.join(repoRoot(), 'checkpoints', 'base');

/** The first of $PYTHON, python3, /usr/bin/python3 (as scripts/bench.ts tries them) that imports torch. */
function findPython(): { python?: string; tried: string[] } {
  const tried: string[] = [];
  for (const py of new Set([process.env.PYTHON || 'python3', '/usr/bin/python3'])) {
    const r = spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0) return { python: py, tried };
    tried.push(`${py}: ${r.error ? 'not found' : 'no torch'}`);
  }
  return { tried };
}
const { python, tried } = findPython();
const missing = python ? undefined : `no python with PyTorch (${tried.join('; ')}; set $PYTHON or install python3-torch)`;
const required = process.env.GTA_PYTORCH_REQUIRED === '1';

// Sentences of different lengths (3 to 13 tokens), so every row gets a different left padding.
const EXAMPLES: [string, string][] = [
  ['the film was a joy from start to finish.', 'positive'],
  ['dull.', 'negative'],
  ['a clever, warm and very funny story about two old friends.', 'positive'],
  ['i wanted to leave after ten minutes', 'negative'],
  ['not bad at all', 'neutral'],
];
// A fixed lr (warmup and schedule do not enter AdamW.apply: its caller passes the lr), clipping at 1.0 (the
// norm here is ~11), and a large decay: lr * decay * |p| = 5e-4 for a layer-norm gain of 1, so decaying the
// wrong parameters shows (at the default 0.01 it would be 1e-5, under the tolerance).
const LR = 1e-3;
const OPTIM: OptimConfig = { lr: LR, weight_decay: 0.5, beta1: 0.9, beta2: 0.999, eps: 1e-8, warmup_steps: 0, schedule: 'constant', min_lr_ratio: 1, grad_clip: 1.0 };

const f32 = (t: tf.Tensor): NamedArray => ({ dtype: 'F32', shape: t.shape, data: t.dataSync() as Float32Array });

test('logits, SFT loss, gradients and one AdamW step equal PyTorch on checkpoints/base', { skip: required ? false : missing, timeout: 120_000 }, async (t) => {
  if (!python) assert.fail(`GTA_PYTORCH_REQUIRED=1 but ${missing}`);
  await useWasm();
  const { model, tokenizer: tok } = loadCheckpoint(checkpoint);
  const pb = promptBuilder(tok, '{text}', 64);
  const batch: SftExample[] = EXAMPLES.map(([text, label]) => ({ prompt: pb.prompt(text), target: pb.answerTarget(label) }));
  const seqs = batch.map((e) => [...e.prompt, ...e.target]);
  assert.ok(new Set(seqs.map((s) => s.length)).size === seqs.length, 'every row gets a different padding');
  const out = new Map<string, NamedArray>();

  // (a) logits at every real position, row by row, left to right
  const { input, layout } = buildInput(seqs, tok.padId);
  const real = layout.pad.flatMap((p, b) => Array.from({ length: layout.T - p }, (_, j) => b * layout.T + p + j));
  tf.tidy(() => {
    const hidden = model.forward(input, {}).hidden;
    const h = tf.gather(tf.reshape(hidden, [layout.B * layout.T, model.arch.d_model]), tf.tensor1d(real, 'int32')) as tf.Tensor2D;
    out.set('logits', f32(model.logits(h)));
  });
  disposeInput(input);

  // (b, c) SFT loss and gradients, no dropout
  const { loss, grads } = sftGrads(model, batch, tok.padId, { dropout: 0 });
  out.set('loss', { dtype: 'F32', shape: [1], data: Float32Array.of(loss) });
  for (const [name, g] of Object.entries(grads)) out.set(`grad.${name}`, f32(g));
  assert.equal(Object.keys(grads).length, model.params.size, 'a gradient for every parameter');

  // (d) one AdamW step at a fixed lr
  const opt = new AdamW(model.params, OPTIM);
  const gradNorm = opt.apply(grads, LR);
  tf.dispose(Object.values(grads));
  out.set('grad_norm', { dtype: 'F32', shape: [1], data: Float32Array.of(gradNorm) });
  for (const [name, p] of model.params) out.set(`param.${name}`, f32(p));
  opt.dispose();
  model.dispose();

  const dir = tmpDir('gta-parity-');
  try {
    fs.writeFileSync(path.join(dir, 'gta.safetensors'), encodeSafetensors(out));
    const { weight_decay, beta1, beta2, eps, grad_clip } = OPTIM;
    const optim = { lr: LR, weight_decay, beta1, beta2, eps, grad_clip };
    fs.writeFileSync(path.join(dir, 'case.json'), JSON.stringify({ texts: EXAMPLES, seqs, prompt_lens: batch.map((e) => e.prompt.length), pad_id: tok.padId, optim }));
    const r = spawnSync(python, [script, 'parity', '--checkpoint', checkpoint, '--case', dir, '--tol', String(TOL)], { encoding: 'utf8', timeout: 100_000 });
    const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
    t.diagnostic(`${python}: ${line}`);
    assert.equal(r.status, 0, `torch_reference.py parity exited ${r.status ?? r.signal ?? r.error?.message}: ${(r.stderr ?? '').trim()}`);
    const res = JSON.parse(line) as { max_abs_diff: Record<string, number>; max_err: Record<string, number>; ok: boolean };
    const quantities = ['grad_norm', 'grads', 'logits', 'loss', 'params_after_step', 'params_after_step_on_gta_grads'];
    assert.deepEqual(Object.keys(res.max_err).sort(), quantities);
    // |gta - torch| / max(1, |torch|): absolute up to 1, relative above (why: scripts/torch_reference.py)
    for (const [k, d] of Object.entries(res.max_err)) assert.ok(d <= TOL, `${k} differs from PyTorch by ${d} (max abs diff ${res.max_abs_diff[k]})`);
    assert.ok(res.ok);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
