/**
 * Resume after SIGKILL: a run killed mid-way and continued with `gta train --resume` must write the same
 * metrics.jsonl as an uninterrupted run (wall-clock and speed fields aside), bit for bit on wasm.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { tmpDir } from './helpers/tiny.js';
import { GTA, gta, tinyConfig } from './helpers/cli.js';

function comparable(file: string): Record<string, unknown>[] {
  return fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'time_s' && !k.startsWith('perf/'))));
}

async function killAfterCheckpoint(args: string[], cwd: string, runs: string, minStep: number): Promise<string> {
  const child = spawn(process.execPath, [GTA, ...args], { cwd, stdio: 'ignore' });
  let runDir = '';
  for (let i = 0; i < 1200; i++) {
    const d = fs.existsSync(runs) ? fs.readdirSync(runs) : [];
    if (d.length) {
      runDir = path.join(runs, d[0]);
      const state = path.join(runDir, 'checkpoints', 'latest', 'trainer_state.json');
      if (fs.existsSync(state) && JSON.parse(fs.readFileSync(state, 'utf8')).step >= minStep) break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  return runDir;
}

for (const mode of ['sft', 'gta'] as const) {
  test(`${mode}: kill -9 mid-run, resume, and metrics.jsonl equals an uninterrupted run's`, async () => {
    const sets = ['--set', `mode=${mode}`, '--set', 'train.steps=40', '--set', 'train.checkpoint_every=10', '--set', 'train.eval_every=20', '--set', 'train.log_every=5',
      '--set', 'train.dropout=0.1', '--set', 'model.max_seq_len=48', '--set', 'rl.think_max_tokens=2', '--set', 'train.batch_size=16', '--set', 'rl.group_size=4', '--log-level', 'warn'];
    if (mode === 'gta') sets.push('--set', 'rl.beta=0.05', '--set', 'train.dropout=0');
    const a = tmpDir();
    const full = gta(['train', '--config', tinyConfig(a), ...sets], a);
    assert.equal(full.code, 0, full.stderr);
    const fullDir = full.stdout.split('\n')[0];

    const b = tmpDir();
    const runDir = await killAfterCheckpoint(['train', '--config', tinyConfig(b), ...sets], b, path.join(b, 'runs'), 10);
    assert.notEqual(JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')).status, 'finished');
    const resumed = gta(['train', '--resume', runDir, '--log-level', 'warn'], b);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(comparable(path.join(runDir, 'metrics.jsonl')), comparable(path.join(fullDir, 'metrics.jsonl')));
    const run = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
    assert.equal(run.status, 'finished');
    assert.equal(run.resumes.length, 1);
    assert.ok(run.resumes[0].from_step >= 10);
  });
}

/** Runs until the process kills itself at an injected crash point (GTA_CRASH_AT), then returns the run dir. */
function crashAt(point: string, args: string[], cwd: string): string {
  const r = spawnSync(process.execPath, [GTA, ...args], { cwd, encoding: 'utf8', env: { ...process.env, GTA_CRASH_AT: point } });
  assert.equal(r.signal, 'SIGKILL', `expected a crash at ${point}: ${r.stderr}`);
  const runs = path.join(cwd, 'runs');
  return path.join(runs, fs.readdirSync(runs)[0]);
}

test('gta: killed during a rollout, during the optimizer step, or while writing a checkpoint, the resumed run equals an uninterrupted one', () => {
  const sets = ['--set', 'mode=gta', '--set', 'train.steps=30', '--set', 'train.checkpoint_every=10', '--set', 'train.eval_every=15', '--set', 'train.log_every=5',
    '--set', 'model.max_seq_len=48', '--set', 'rl.think_max_tokens=2', '--set', 'train.batch_size=16', '--set', 'rl.group_size=4', '--set', 'train.dropout=0', '--log-level', 'warn'];
  const a = tmpDir();
  const full = gta(['train', '--config', tinyConfig(a), ...sets], a);
  assert.equal(full.code, 0, full.stderr);
  const expected = comparable(path.join(full.stdout.split('\n')[0], 'metrics.jsonl'));
  // rollout:4000 is a sampled token in step ~14 (16 completions of ~18 tokens a step); optimizer:232 is
  // mid-update in step 15 (16 parameters a step); checkpoint:3 is halfway through writing the step-20
  // checkpoint over the step-10 one (the second save is 'best' at the step-15 eval).
  for (const point of ['rollout:4000', 'optimizer:232', 'checkpoint:3']) {
    const b = tmpDir();
    const runDir = crashAt(point, ['train', '--config', tinyConfig(b), ...sets], b);
    const resumed = gta(['train', '--resume', runDir, '--log-level', 'warn'], b);
    assert.equal(resumed.code, 0, `${point}: ${resumed.stderr}`);
    assert.deepEqual(comparable(path.join(runDir, 'metrics.jsonl')), expected, point);
  }
});

test('pretrain: kill -9 mid-run, resume, and the metrics and the base checkpoint equal an uninterrupted run\'s', async () => {
  const config = (dir: string) => {
    const f = path.join(dir, 'lm.yaml');
    fs.writeFileSync(
      f,
      `name: tinylm
seed: 3
backend: wasm
corpus: [trec]
output: ${path.join(dir, 'base')}
model: { vocab_size: 300, d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32, max_seq_len: 32 }
train: { steps: 30, batch_size: 8, seq_len: 16, dropout: 0.1, log_every: 5, eval_every: 15, checkpoint_every: 10, eval_sequences: 16, optim: { lr: 0.003, warmup_steps: 5 } }
`,
    );
    return f;
  };
  const a = tmpDir();
  const full = gta(['pretrain', '--config', config(a), '--log-level', 'warn'], a);
  assert.equal(full.code, 0, full.stderr);
  const fullDir = path.resolve(a, full.stdout.trim().split('run: ')[1]);
  const b = tmpDir();
  const runDir = await killAfterCheckpoint(['pretrain', '--config', config(b), '--log-level', 'warn'], b, path.join(b, 'runs'), 10);
  assert.ok(!fs.existsSync(path.join(b, 'base')), 'a killed pretraining run writes no base checkpoint');
  const wrong = gta(['train', '--resume', runDir], b);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /not a train run; continue it with gta pretrain --resume/);
  const resumed = gta(['pretrain', '--resume', 'latest', '--log-level', 'warn'], b);
  assert.equal(resumed.code, 0, resumed.stderr);
  const metrics = comparable(path.join(runDir, 'metrics.jsonl'));
  assert.deepEqual(metrics, comparable(path.join(fullDir, 'metrics.jsonl')));
  assert.ok(metrics.some((m) => m['eval/perplexity'] !== undefined) && metrics.some((m) => m['train/loss_lm'] !== undefined));
  assert.ok(fs.readFileSync(path.join(a, 'base', 'model.safetensors')).equals(fs.readFileSync(path.join(b, 'base', 'model.safetensors'))), 'the base weights differ');
});

test('--resume of something that is not a run, and --resume latest with nothing to resume', () => {
  const d = tmpDir();
  assert.match(gta(['train', '--resume', d], d).stderr, /not a gta run directory/);
  const r = gta(['train', '--resume', 'latest'], d);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no unfinished run with a checkpoint to resume/);
});

test('a trainer_state.json of the wrong shape (its checksum recomputed, as another version might write it) stops the resume with one line naming the file and the key', () => {
  const d = tmpDir();
  // killed in the update of a step past the first checkpoint (step 50)
  const crashed = spawnSync(process.execPath, [GTA, 'train', '--config', tinyConfig(d), '--log-level', 'warn'], { cwd: d, encoding: 'utf8', env: { ...process.env, GTA_CRASH_AT: 'optimizer:1000' } });
  assert.equal(crashed.signal, 'SIGKILL', crashed.stderr);
  const runDir = path.join(d, 'runs', fs.readdirSync(path.join(d, 'runs'))[0]);
  const ckpt = path.join(runDir, 'checkpoints', 'latest');
  const rewrite = (edit: (state: Record<string, unknown>) => void) => {
    const file = path.join(ckpt, 'trainer_state.json');
    const state = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    edit(state);
    const text = JSON.stringify(state);
    fs.writeFileSync(file, text);
    const meta = JSON.parse(fs.readFileSync(path.join(ckpt, 'config.json'), 'utf8')) as { sha256: Record<string, string> };
    meta.sha256['trainer_state.json'] = createHash('sha256').update(text).digest('hex');
    fs.writeFileSync(path.join(ckpt, 'config.json'), JSON.stringify(meta));
  };
  const file = path.join(ckpt, 'trainer_state.json');
  rewrite((st) => void (st.position = { epoch: 0 }));
  let r = gta(['train', '--resume', runDir, '--log-level', 'warn'], d);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr.trim(), new RegExp(`^gta: error: ${file}: trainer state key position\\.batch: .+$`));
  // the runner's part (SFT's dropout stream) is checked by the runner
  rewrite((st) => void ((st.position = { epoch: 0, batch: 3 }), (st.runner = { dropout_rng: [1, 2] })));
  r = gta(['train', '--resume', runDir, '--log-level', 'warn'], d);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr.trim(), new RegExp(`^gta: error: ${file}: trainer state key dropout_rng: .+$`));
});

test('SIGTERM: the run finishes its step, writes a checkpoint, says how to resume, and resumes', async () => {
  const dir = tmpDir();
  const runs = path.join(dir, 'runs');
  const child = spawn(process.execPath, [GTA, 'train', '--config', tinyConfig(dir), '--set', 'train.steps=100000', '--set', 'train.log_every=1', '--log-level', 'warn'], { cwd: dir });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  for (let i = 0; i < 600; i++) {
    const d = fs.existsSync(runs) ? fs.readdirSync(runs) : [];
    const m = d.length ? path.join(runs, d[0], 'metrics.jsonl') : '';
    if (m && fs.existsSync(m) && fs.readFileSync(m, 'utf8').split('\n').length > 5) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGTERM');
  const code = await new Promise((r) => child.on('exit', (c) => r(c)));
  assert.equal(code, 130);
  const runDir = path.join(runs, fs.readdirSync(runs)[0]);
  assert.match(stderr, new RegExp(`interrupted at step \\d+; continue with: gta train --resume ${runDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  const run = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
  assert.equal(run.status, 'interrupted');
  const state = JSON.parse(fs.readFileSync(path.join(runDir, 'checkpoints', 'latest', 'trainer_state.json'), 'utf8'));
  assert.equal(state.step, run.step);
  const resumed = gta(['train', '--resume', 'latest', '--set', `train.steps=${state.step + 3}`, '--log-level', 'warn'], dir);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.equal(JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')).status, 'finished');
});
