/** Running the gta CLI from tests, on a tiny synthetic task. */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { writeSyntheticCsv } from './synthetic.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const GTA = path.join(ROOT, 'bin', 'gta');

export function gta(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [GTA, ...args], { cwd, encoding: 'utf8', env: { ...process.env, CI: 'true' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function tinyConfig(dir: string, extra = ''): string {
  const files = writeSyntheticCsv(dir);
  const cfg = path.join(dir, 'tiny.yaml');
  fs.writeFileSync(
    cfg,
    `name: tiny
seed: 5
backend: wasm
init: scratch
output_dir: ${path.join(dir, 'runs')}
model: { vocab_size: 300, d_model: 32, n_layers: 1, n_heads: 2, d_ff: 64, max_seq_len: 32 }
data:
  train_file: ${files.train}
  dev_file: ${files.dev}
  test_file: ${files.test}
  max_text_tokens: 20
train:
  steps: 150
  batch_size: 16
  dropout: 0
  optim: { lr: 0.005, warmup_steps: 10 }
  eval_every: 50
  checkpoint_every: 50
  log_every: 10
eval: { batch_size: 50 }
${extra}`,
  );
  return cfg;
}

