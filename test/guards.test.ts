/** Numerical guards and checkpoint integrity: nothing poisoned or corrupted is used silently. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadCheckpoint, loadTrainingState, saveCheckpoint } from '../src/model/checkpoint.js';
import { AdamW } from '../src/train/adamw.js';
import { tinyModel, tinyTokenizer, tmpDir, useWasm } from './helpers/tiny.js';
import { gta, tinyConfig } from './helpers/cli.js';
import { spawnSync } from 'node:child_process';

const OPTIM = { lr: 1e-3, weight_decay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, warmup_steps: 0, schedule: 'constant' as const, min_lr_ratio: 1, grad_clip: 1 };

test('a corrupted or truncated checkpoint file is detected and named', async () => {
  await useWasm();
  const tok = tinyTokenizer();
  const model = tinyModel(tok);
  const dir = path.join(tmpDir(), 'ckpt');
  saveCheckpoint(dir, model, tok, { kind: 'training', step: 3, optimizer: new AdamW(model.params, OPTIM).state(), trainerState: { step: 3 } });
  const weights = path.join(dir, 'model.safetensors');
  const bytes = fs.readFileSync(weights);
  bytes[bytes.length - 3] ^= 0xff;
  fs.writeFileSync(weights, bytes);
  assert.throws(() => loadCheckpoint(dir), /model\.safetensors: corrupted or truncated \(checksum mismatch\)/);
  fs.writeFileSync(weights, bytes.subarray(0, 100));
  assert.throws(() => loadCheckpoint(dir), /model\.safetensors: corrupted or truncated/);
  const opt = path.join(dir, 'optimizer.safetensors');
  fs.writeFileSync(opt, fs.readFileSync(opt).subarray(0, 50));
  assert.throws(() => loadTrainingState(dir), /optimizer\.safetensors: corrupted or truncated/);
  fs.rmSync(path.join(dir, 'tokenizer.json'));
  assert.throws(() => loadCheckpoint(dir), /tokenizer\.json: missing from the checkpoint/);
});

test('a non-finite loss stops the run before the step is applied, naming the step; or the step is skipped', () => {
  const dir = tmpDir();
  const sets = ['--set', 'train.optim.lr=1e30', '--set', 'train.optim.warmup_steps=0', '--set', 'train.optim.grad_clip=0', '--set', 'train.steps=20', '--log-level', 'warn'];
  const r = gta(['train', '--config', tinyConfig(dir), ...sets], dir);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /gta: error: non-finite (loss|gradient) .* at step \d+; the step was not applied/);
  const runDir = path.join(dir, 'runs', fs.readdirSync(path.join(dir, 'runs'))[0]);
  const run = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
  assert.equal(run.status, 'failed');
  assert.match(run.error, /non-finite/);

  const d2 = tmpDir();
  const r2 = gta(['train', '--config', tinyConfig(d2), ...sets, '--set', 'train.on_nonfinite=skip', '--set', 'train.log_every=20'], d2);
  assert.equal(r2.code, 0, r2.stderr);
  const line = JSON.parse(fs.readFileSync(path.join(r2.stdout.split('\n')[0], 'metrics.jsonl'), 'utf8').split('\n')[0]);
  assert.ok(line['train/nonfinite_skipped'] > 0);
});

test('a disk that fills up: one line naming the file, exit 1, run not marked finished, the last good checkpoint intact', (t) => {
  const dir = tmpDir();
  const cfg = tinyConfig(dir); // its data files live outside the small disk
  const disk = path.join(dir, 'disk');
  fs.mkdirSync(disk);
  // A real full disk: a 400 KiB tmpfs (each tiny checkpoint takes about 90 KiB, written beside the last).
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=400k', 'tmpfs', disk], { encoding: 'utf8' });
  assert.equal(mount.status, 0, `this test mounts a small tmpfs (needs root): ${mount.stderr}`);
  t.after(() => spawnSync('umount', [disk]));
  const r = gta(['train', '--config', cfg, '--set', `output_dir=${disk}/runs`, '--set', 'train.steps=100000', '--set', 'train.checkpoint_every=5', '--set', 'train.log_every=1', '--log-level', 'warn'], dir);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr.trim(), /^gta: error: \S+: no space left on device \(ENOSPC\)$/m);
  const runDir = path.join(disk, 'runs', fs.readdirSync(path.join(disk, 'runs'))[0]);
  assert.notEqual(JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')).status, 'finished');
  assert.ok(!fs.existsSync(path.join(runDir, 'summary.json')));
  const latest = path.join(runDir, 'checkpoints', 'latest');
  assert.equal(loadCheckpoint(latest).meta.step % 5, 0, 'the last complete checkpoint still loads (checksums verified)');
  assert.deepEqual(fs.readdirSync(path.join(runDir, 'checkpoints')).filter((f) => f.includes('.tmp-')), [], 'no half-written folder left');
});

/** A saved tiny checkpoint whose config.json `edit` has changed; returns its folder. */
async function checkpointWithMeta(edit: (meta: Record<string, unknown>) => void): Promise<string> {
  await useWasm();
  const tok = tinyTokenizer();
  const dir = path.join(tmpDir(), 'ckpt');
  saveCheckpoint(dir, tinyModel(tok), tok, { kind: 'base', step: 1 });
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  edit(meta);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(meta));
  return dir;
}

test('a checkpoint whose tokenizer is not the one its weights were trained with is refused', async () => {
  const dir = await checkpointWithMeta((meta) => void (meta.tokenizer = '0123456789abcdef'));
  assert.throws(() => loadCheckpoint(dir), /tokenizer\.json: tokenizer does not match the one the checkpoint was trained with/);
});

test('a checkpoint whose config.json records no checksums names the file once', async () => {
  const dir = await checkpointWithMeta((meta) => {
    assert.ok(meta.sha256, 'saved checkpoints record checksums');
    delete meta.sha256;
  });
  const tokFile = path.join(dir, 'tokenizer.json');
  assert.throws(() => loadCheckpoint(dir), (e: Error) => {
    assert.equal(e.message, `${tokFile}: the checkpoint records no checksum for it`);
    assert.equal(e.message.split(tokFile).length - 1, 1, 'the path appears exactly once');
    return true;
  });
  // A missing tokenizer file is named once too (it used to read ".../tokenizer.json: .../tokenizer.json: missing").
  fs.rmSync(tokFile);
  assert.throws(() => loadCheckpoint(dir), (e: Error) => e.message === `${tokFile}: missing from the checkpoint`);
});
