/**
 * `gta train` from a Hugging Face model folder through the ordinary training code: SFT killed
 * mid-update resumes to the metrics of an uninterrupted run, GTA mode (rollouts with the key/value
 * cache, the frozen reference of the KL term) finishes and its checkpoint is re-scored by `gta eval`,
 * and a broken folder stops the run before it starts with one line naming the file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { GTA, gta } from './helpers/cli.js';
import { writeSyntheticCsv } from './helpers/synthetic.js';
import { tmpDir } from './helpers/tiny.js';
import { repoRoot } from '../src/util/paths.js';

const FIXTURES = path.join(repoRoot(), 'test', 'fixtures', 'hf');

function config(dir: string, init: string, extra = ''): string {
  const files = writeSyntheticCsv(dir, { train: 160, dev: 24, test: 24 });
  const file = path.join(dir, 'hf.yaml');
  fs.writeFileSync(
    file,
    `name: hf
seed: 3
backend: wasm
init: ${init}
output_dir: ${path.join(dir, 'runs')}
data:
  train_file: ${files.train}
  dev_file: ${files.dev}
  test_file: ${files.test}
  max_text_tokens: 16
train:
  steps: 8
  batch_size: 8
  optim: { lr: 0.003, warmup_steps: 2 }
  eval_every: 4
  checkpoint_every: 4
  log_every: 2
eval: { batch_size: 24 }
${extra}`,
  );
  return file;
}

function metrics(runDir: string): Record<string, unknown>[] {
  return fs
    .readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'time_s' && !k.startsWith('perf/'))));
}

test('SFT from a Qwen2 folder (dropout on), killed mid-update and resumed, writes the metrics of an uninterrupted run', () => {
  const init = path.join(FIXTURES, 'qwen2');
  const a = tmpDir();
  const full = gta(['train', '--config', config(a, init), '--log-level', 'warn'], a);
  assert.equal(full.code, 0, full.stderr);
  const fullDir = full.stdout.split('\n')[0];
  const ckpt = path.join(fullDir, 'checkpoints', 'latest');
  const meta = JSON.parse(fs.readFileSync(path.join(ckpt, 'config.json'), 'utf8'));
  assert.equal(meta.arch.style.model_type, 'qwen2');
  assert.equal(JSON.parse(fs.readFileSync(path.join(ckpt, 'tokenizer.json'), 'utf8')).type, 'hf-tokenizer');
  // 16 parameters a step: optimizer:88 is halfway through step 6's update, after the step-4 checkpoint
  const b = tmpDir();
  const crashed = spawnSync(process.execPath, [GTA, 'train', '--config', config(b, init), '--log-level', 'warn'], { cwd: b, encoding: 'utf8', env: { ...process.env, GTA_CRASH_AT: 'optimizer:88' } });
  assert.equal(crashed.signal, 'SIGKILL', crashed.stderr);
  const runDir = path.join(b, 'runs', fs.readdirSync(path.join(b, 'runs'))[0]);
  const resumed = gta(['train', '--resume', runDir, '--log-level', 'warn'], b);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.deepEqual(metrics(runDir), metrics(fullDir));
});

test('GTA from a Llama folder with a KL term finishes, and gta eval re-scores its checkpoint', () => {
  const d = tmpDir();
  const extra = 'mode: gta\nrl: { group_size: 4, think_max_tokens: 2, beta: 0.05 }\n';
  const r = gta(['train', '--config', config(d, path.join(FIXTURES, 'llama'), extra), '--set', 'train.steps=4', '--set', 'train.dropout=0', '--log-level', 'warn'], d);
  assert.equal(r.code, 0, r.stderr);
  const runDir = r.stdout.split('\n')[0];
  const lines = metrics(runDir);
  const train = lines.filter((l) => l.split === 'train');
  assert.ok(train.length > 0 && train.every((l) => Number.isFinite(l['train/loss_sft']) && Number.isFinite(l['train/loss_rl'])), JSON.stringify(train));
  // the policy has moved away from the frozen reference
  assert.ok((train[train.length - 1].kl as number) > 0, JSON.stringify(train));
  const dev = lines.filter((l) => l.split === 'dev').pop()!;
  assert.ok(typeof dev['eval/accuracy'] === 'number');
  const ev = gta(['eval', '--run', runDir, '--split', 'test', '--log-level', 'warn'], d);
  assert.equal(ev.code, 0, ev.stderr);
});

test('a broken Hugging Face folder stops gta train before a run directory exists, with one line naming the file', () => {
  const d = tmpDir();
  const model = path.join(d, 'model');
  fs.cpSync(path.join(FIXTURES, 'qwen3'), model, { recursive: true });
  fs.rmSync(path.join(model, 'tokenizer.json'));
  const r = gta(['train', '--config', config(d, model), '--log-level', 'warn'], d);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim(), `gta: error: ${path.join(model, 'tokenizer.json')}: missing; gta reads a model's tokenizer from tokenizer.json (transformers' tokenizer.save_pretrained writes one)`);
  assert.ok(!fs.existsSync(path.join(d, 'runs')) || fs.readdirSync(path.join(d, 'runs')).length === 0);
});
