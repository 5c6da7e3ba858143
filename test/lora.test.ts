/**
 * LoRA (train.lora, src/model/lora.ts) against Python PEFT: adapters PEFT made on the tiny Hugging Face
 * fixtures (test/fixtures/peft/, scripts/make_peft_fixtures.py, made once) give PyTorch's logits and
 * gradients of A and B; a run trains the adapters alone (base frozen, moments for adapters only, the
 * KL reference is the base), writes them in PEFT's format beside its checkpoint, and resumes exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import tf from '../src/util/tfjs.cjs';
import { buildInput, disposeInput } from '../src/model/batch.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { loadInitial } from '../src/model/init.js';
import { isAdapter, loraTargets } from '../src/model/lora.js';
import { withPeftAdapters } from '../src/model/peft.js';
import { decodeSafetensors, SafetensorsReader } from '../src/model/safetensors.js';
import type { Transformer } from '../src/model/transformer.js';
import { loadConfig } from '../src/config/load.js';
import { TrainConfigSchema } from '../src/config/schema.js';
import { Trainer } from '../src/train/trainer.js';
import { GtaError } from '../src/util/errors.js';
import { repoRoot } from '../src/util/paths.js';
import { Rng } from '../src/util/rng.js';
import { GTA, gta } from './helpers/cli.js';
import { writeSyntheticCsv } from './helpers/synthetic.js';
import { tmpDir, useWasm } from './helpers/tiny.js';
import { onTorch, torchUnavailable } from './helpers/torch.js';

const FIXTURES = path.join(repoRoot(), 'test', 'fixtures');
const FAMILIES = ['llama', 'qwen3', 'gpt2'] as const;
const TOL = 1e-5;

/** Largest |a - b| relative to the largest |b| (gradients are sums over 14 positions and the whole vocabulary: large). */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / Math.max(m, 1);
}

function peftParity(t: { diagnostic: (m: string) => void }, backend: string): void {
  for (const family of FAMILIES) {
    const base = loadInitial(path.join(FIXTURES, 'hf', family), 1).model;
    const model = withPeftAdapters(base, path.join(FIXTURES, 'peft', family));
    const { tensors: g } = decodeSafetensors(fs.readFileSync(path.join(FIXTURES, 'peft', family, 'golden.safetensors')), 'golden');
    const ids = g.get('ids')!;
    const [N, T] = ids.shape;
    const V = g.get('logits')!.shape[2];
    const rows = Array.from({ length: N }, (_, i) => Array.from(ids.data.slice(i * T, (i + 1) * T)));
    const { input } = buildInput(rows, 0);
    const R = tf.tensor(g.get('R')!.data as Float32Array, [N * T, V]);
    const logits = () => tf.slice(model.logits(tf.reshape(model.forward(input).hidden, [N * T, -1]) as tf.Tensor2D), [0, 0], [-1, V]);
    const dLogits = relDiff(tf.tidy(logits).dataSync(), g.get('logits')!.data);
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(logits(), R)) as tf.Scalar);
    const byName = model.byParamName(grads);
    assert.deepEqual(Object.keys(byName).sort(), [...model.params.keys()].filter(isAdapter).sort(), `${family}: gradients for the adapters alone`);
    let dGrad = 0;
    for (const target of loraTargets({ ...model.arch, lora: model.arch.lora! })) {
      for (const which of ['A', 'B'] as const) {
        const want = g.get(`grad.base_model.model.${target.hfPath}.lora_${which}.weight`)!;
        const got = tf.tidy(() => tf.transpose(byName[which === 'A' ? target.a : target.b]).dataSync());
        dGrad = Math.max(dGrad, relDiff(got, want.data));
      }
    }
    t.diagnostic(`${backend} ${family}: logits ${dLogits.toExponential(2)}, gradients of A and B ${dGrad.toExponential(2)} (relative to the largest)`);
    assert.ok(dLogits <= TOL, `${family}: logits differ from PEFT's by ${dLogits}`);
    assert.ok(dGrad <= TOL, `${family}: gradients of A and B differ from PyTorch's by ${dGrad}`);
    tf.dispose([R, ...Object.values(grads)]);
    disposeInput(input);
    model.dispose();
  }
}

test("PEFT's adapters give PyTorch's logits and gradients of A and B (1e-5): llama, qwen3, gpt2 on wasm", async (t) => {
  await useWasm();
  peftParity(t, 'wasm');
});

test("PEFT's adapters give PyTorch's logits and gradients on torch", { skip: torchUnavailable() }, (t) => onTorch(() => peftParity(t, 'torch')));

test('fresh adapters leave the model as it was; only they train, and AdamW keeps moments for them alone', async () => {
  await useWasm();
  const base = loadInitial(path.join(FIXTURES, 'hf', 'llama'), 1).model;
  const before = new Map([...base.params].map(([k, v]) => [k, v.dataSync().slice()]));
  const model = base.withAdapters({ r: 2, alpha: 4, dropout: 0, target_modules: ['q_proj', 'v_proj', 'down_proj'], base_model: null }, new Rng(1));
  const { input } = buildInput([[1, 5, 9, 13]], 0);
  const h = (m: Transformer) => m.forward(input).hidden.dataSync();
  assert.deepEqual(h(model), h(model.base()), 'B starts at zero: the same outputs');
  assert.equal(model.trainable().size, 2 * 3 * model.arch.n_layers);
  assert.ok([...model.trainable().keys()].every(isAdapter));
  const trainer = new Trainer(model, { lr: 0.1, weight_decay: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, warmup_steps: 0, schedule: 'constant', min_lr_ratio: 1, grad_clip: 1 });
  assert.deepEqual([...trainer.optimizer.state().arrays.keys()].map((k) => k.slice(2)).sort(), [...model.trainable().keys(), ...model.trainable().keys()].sort());
  for (let s = 0; s < 2; s++) {
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(model.forward(input).hidden)) as tf.Scalar);
    value.dispose();
    trainer.applyStep(model.byParamName(grads), {}, 0.1);
  }
  for (const [k, v] of base.params) assert.deepEqual(v.dataSync(), before.get(k), `${k}: the base is frozen`);
  assert.notDeepEqual(h(model), h(model.base()), 'the adapters trained');
  disposeInput(input);
  trainer.dispose();
  model.dispose();
});

test('train.lora: a module the family lacks, or LoRA dropout in an RL mode, is a one-line config error naming the key', () => {
  const d = tmpDir();
  const f = path.join(d, 'c.yaml');
  fs.writeFileSync(f, 'mode: gta\ndata: { name: sst2 }\ntrain:\n  lora: { dropout: 0.1 }\n');
  assert.throws(() => loadConfig(TrainConfigSchema, f), (e: Error) => e instanceof GtaError && /train\.lora\.dropout: mode gta trains without dropout/.test(e.message));
  const r = gta(['train', '--config', runConfig(d, 'gpt2', 'train:\n  steps: 2\n  lora: { target_modules: [q_proj] }\n'), '--log-level', 'warn'], d);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim(), "gta: error: train.lora.target_modules: 'q_proj' is not a module of a gpt2 model (its modules: c_attn, c_proj, c_fc; or 'all-linear')");
  assert.ok(!fs.existsSync(path.join(d, 'runs')) || fs.readdirSync(path.join(d, 'runs')).length === 0, 'no run directory');
});

function runConfig(dir: string, family: string, extra: string): string {
  const files = writeSyntheticCsv(dir, { train: 96, dev: 16, test: 16 });
  const file = path.join(dir, `${family}.yaml`);
  fs.writeFileSync(
    file,
    `name: lora
seed: 3
backend: wasm
mode: gta
init: ${path.join(FIXTURES, 'hf', family)}
output_dir: ${path.join(dir, 'runs')}
data: { train_file: ${files.train}, dev_file: ${files.dev}, test_file: ${files.test}, max_text_tokens: 16 }
rl: { group_size: 4, think_max_tokens: 2, beta: 0.05 }
eval: { batch_size: 16 }
${extra}`,
  );
  return file;
}

const metrics = (runDir: string) =>
  fs
    .readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => Object.fromEntries(Object.entries(JSON.parse(l) as Record<string, unknown>).filter(([k]) => k !== 'time_s' && !k.startsWith('perf/'))));

test('GTA with LoRA from a Llama folder: killed and resumed it writes the metrics of an uninterrupted run; its PEFT files hold the trained adapters; gta eval re-scores it', async () => {
  const extra = `train:
  steps: 4
  batch_size: 16
  optim: { lr: 0.01, warmup_steps: 1 }
  eval_every: 2
  checkpoint_every: 2
  log_every: 1
  lora: { r: 4, alpha: 8, target_modules: all-linear }
`;
  const a = tmpDir();
  const full = gta(['train', '--config', runConfig(a, 'llama', extra), '--log-level', 'warn'], a);
  assert.equal(full.code, 0, full.stderr);
  const fullDir = full.stdout.split('\n')[0];
  const train = metrics(fullDir).filter((l) => l.split === 'train');
  assert.ok((train.at(-1)!.kl as number) > 0, 'the adapted policy moved away from the base, its KL reference');
  // 14 adapters a layer, 2 layers: optimizer:90 is in step 4's update, after the step-2 checkpoint
  const b = tmpDir();
  const crashed = spawnSync(process.execPath, [GTA, 'train', '--config', runConfig(b, 'llama', extra), '--log-level', 'warn'], { cwd: b, encoding: 'utf8', env: { ...process.env, GTA_CRASH_AT: 'optimizer:90' } });
  assert.equal(crashed.signal, 'SIGKILL', crashed.stderr);
  const runDir = path.join(b, 'runs', fs.readdirSync(path.join(b, 'runs'))[0]);
  assert.equal(gta(['train', '--resume', runDir, '--log-level', 'warn'], b).code, 0);
  assert.deepEqual(metrics(runDir), metrics(fullDir));
  // the checkpoint's PEFT files: the same adapters as gta's own weights, read as PEFT's
  await useWasm();
  const ckpt = path.join(fullDir, 'checkpoints', 'latest');
  const saved = loadCheckpoint(ckpt).model;
  const viaPeft = withPeftAdapters(loadInitial(path.join(FIXTURES, 'hf', 'llama'), 3).model, ckpt);
  assert.deepEqual(viaPeft.arch.lora!.target_modules, saved.arch.lora!.target_modules);
  for (const name of [...saved.params.keys()].filter(isAdapter)) assert.deepEqual(viaPeft.params.get(name)!.dataSync(), saved.params.get(name)!.dataSync(), name);
  assert.ok(new SafetensorsReader(path.join(ckpt, 'adapter_model.safetensors')).entries.has('base_model.model.model.layers.1.mlp.down_proj.lora_B.weight'));
  const ev = gta(['eval', '--run', fullDir, '--split', 'test', '--log-level', 'warn'], a);
  assert.equal(ev.code, 0, ev.stderr);
  saved.dispose();
  viaPeft.dispose();
});
