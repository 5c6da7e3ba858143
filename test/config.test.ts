import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { CompareConfigSchema, PretrainConfigSchema, TrainConfigSchema } from '../src/config/schema.js';
import { tmpDir } from './helpers/tiny.js';
import { keyPaths, suggestKeys } from '../src/config/keys.js';
import { GtaError } from '../src/util/errors.js';

function write(text: string): string {
  const f = path.join(tmpDir(), 'c.yaml');
  fs.writeFileSync(f, text);
  return f;
}

test('defaults are applied and the resolved YAML holds them', () => {
  const { config, resolvedYaml } = loadConfig(TrainConfigSchema, write('data:\n  name: sst2\n'));
  assert.equal(config.train.optim.lr, 1e-3);
  assert.equal(config.train.batch_size, 32);
  assert.equal(config.mode, 'sft');
  assert.match(resolvedYaml, /batch_size: 32/);
});

test('--set overrides nested keys with YAML-typed values', () => {
  const { config } = loadConfig(TrainConfigSchema, write('data:\n  name: sst2\n'), ['train.steps=12', 'train.optim.lr=0.5', 'data.labels=[a, b]', 'name=x']);
  assert.equal(config.train.steps, 12);
  assert.equal(config.train.optim.lr, 0.5);
  assert.deepEqual(config.data.labels, ['a', 'b']);
  assert.equal(config.name, 'x');
});

test('YAML syntax errors give file:line:col', () => {
  const f = write('data:\n  name: sst2\ntrain: [1, 2\n');
  assert.throws(() => loadConfig(TrainConfigSchema, f), (e: Error) => {
    assert.match(e.message, new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: YAML syntax error`));
    return true;
  });
});

test('an unknown key names its path and line', () => {
  const f = write('data:\n  name: sst2\ntrain:\n  batch_size: 8\n  lr: 0.1\n');
  assert.throws(() => loadConfig(TrainConfigSchema, f), new RegExp(`c\\.yaml:5:3: train\\.lr: unknown key`));
});

test('a wrong type names the key, what was expected and what was found', () => {
  const f = write('data:\n  name: sst2\ntrain:\n  optim:\n    lr: fast\n');
  assert.throws(() => loadConfig(TrainConfigSchema, f), /c\.yaml:5:\d+: train\.optim\.lr: expected number, got string "fast"/);
});

test('a bad enum value lists the choices', () => {
  const f = write('data:\n  name: sst2\nbackend: gpu\n');
  assert.throws(() => loadConfig(TrainConfigSchema, f), /c\.yaml:3:\d+: backend: expected one of "auto", "torch", "wasm", "cpu", "webgpu", "tensorflow", got "gpu"/);
});

test('a bad --set value is blamed on the flag', () => {
  const f = write('data:\n  name: sst2\n');
  assert.throws(() => loadConfig(TrainConfigSchema, f, ['train.batch_size=-3']), (e: Error) => /^--set train\.batch_size: train\.batch_size: too small/i.test(e.message));
  assert.throws(() => loadConfig(TrainConfigSchema, f, ['nonsense']), /--set nonsense: expected key\.path=value/);
});

test('missing data section and missing file', () => {
  assert.throws(() => loadConfig(TrainConfigSchema, write('seed: 3\n')), /data: required/);
  assert.throws(() => loadConfig(TrainConfigSchema, '/nonexistent/c.yaml'), /\/nonexistent\/c\.yaml: no such config file/);
});

test('every shipped config loads, and each run config is named for its dataset and mode', () => {
  const dir = path.resolve('configs');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 21, `only ${files.length} configs found`);
  for (const f of files) {
    const file = path.join(dir, f);
    if (f.startsWith('compare-')) loadConfig(CompareConfigSchema, file);
    else if (f.startsWith('pretrain-')) loadConfig(PretrainConfigSchema, file);
    else {
      const { config } = loadConfig(TrainConfigSchema, file);
      assert.equal(`${config.data.name}-${config.mode}.yaml`, f);
      assert.equal(config.name, f.replace(/\.yaml$/, ''));
    }
  }
});

test('every problem at once: one line each with file:line:col, and the nearest valid key', () => {
  const f = write('dataset: sst2\ntrain:\n  learnin_rate: 0.1\n');
  assert.throws(() => loadConfig(TrainConfigSchema, f), (e: Error) => {
    const lines = e.message.split('\n');
    assert.equal(lines[0], `3 problems in ${f}:`);
    assert.deepEqual(lines.slice(1).sort(), [
      `  ${f}:1:1: data: required object is missing`,
      `  ${f}:1:1: dataset: unknown key (did you mean data.name?)`,
      `  ${f}:3:3: train.learnin_rate: unknown key (did you mean train.optim.lr?)`,
    ]);
    return true;
  });
  // Several unknown keys of one mapping are several problems, in file order; a --set problem comes last.
  const g = write('data:\n  name: sst2\n  label: [a, b]\ntrain:\n  batchSize: 8\n  epoch: 2\n');
  assert.throws(() => loadConfig(TrainConfigSchema, g, ['train.steps=0']), (e: Error) => {
    assert.deepEqual(e.message.split('\n'), [
      `4 problems in ${g}:`,
      `  ${g}:3:3: data.label: unknown key (did you mean data.labels?)`,
      `  ${g}:5:3: train.batchSize: unknown key (did you mean train.batch_size?)`,
      `  ${g}:6:3: train.epoch: unknown key (did you mean train.epochs?)`,
      '  --set train.steps: train.steps: Too small: expected number to be >0',
    ]);
    return true;
  });
});

test('key paths come from the schema; suggestions prefer the same section and stay quiet when nothing is close', () => {
  const paths = keyPaths(TrainConfigSchema);
  for (const p of ['name', 'data.name', 'data.labels', 'train.optim.lr', 'train.optim.grad_clip', 'rl.rewards.accuracy', 'gta.lambda_sft', 'sft_then_rl.sft_steps', 'model.d_model']) {
    assert.ok(paths.includes(p), p);
  }
  assert.ok(!paths.some((p) => p.startsWith('data.labels.')), 'lists are leaves');
  assert.ok(keyPaths(PretrainConfigSchema).includes('train.seq_len'));
  assert.deepEqual(suggestKeys('batch-size', 'eval', paths), ['eval.batch_size']);
  assert.deepEqual(suggestKeys('lr', 'train', paths), ['train.optim.lr']);
  assert.deepEqual(suggestKeys('learning_rate', '', paths), ['train.optim.lr']);
  assert.deepEqual(suggestKeys('warmup', 'train.optim', paths), ['train.optim.warmup_steps']);
  assert.deepEqual(suggestKeys('group_sise', 'rl', paths), ['rl.group_size']);
  assert.deepEqual(suggestKeys('bogus_key', '', paths), []);
  assert.deepEqual(suggestKeys('zz', 'train', paths), []);
  // A synonym whose target the schema lacks is not offered: pretraining has no train.epochs.
  assert.deepEqual(suggestKeys('epochs', 'train', keyPaths(PretrainConfigSchema)), []);
  // Other schemas get their own keys: a sweep lists datasets.
  assert.deepEqual(suggestKeys('dataset', '', keyPaths(CompareConfigSchema)), ['datasets']);
});

test('a YAML alias bomb is a config error naming the file, not a crash; ordinary aliases still work', () => {
  const levels = ['a: &a [x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 9; i++) levels.push(`l${i}: &l${i} [${Array(9).fill(i === 1 ? '*a' : `*l${i - 1}`).join(', ')}]`);
  const f = write(`${levels.join('\n')}\ndata: {name: sst2}\n`);
  const t0 = performance.now();
  assert.throws(() => loadConfig(TrainConfigSchema, f), (e: Error) => {
    assert.ok(e instanceof GtaError, String(e));
    assert.match(e.message, new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: too many YAML aliases`));
    assert.ok(!e.message.includes('\n'));
    return true;
  });
  assert.ok(performance.now() - t0 < 2000, 'refused quickly');
  const { config } = loadConfig(TrainConfigSchema, write('data: {name: &n sst2}\nname: *n\n'));
  assert.equal(config.name, 'sst2');
});

test('a key split at the wrong dot gets the key it meant: --set eval.every=5 is train.eval_every', () => {
  const paths = keyPaths(TrainConfigSchema);
  assert.deepEqual(suggestKeys('every', 'eval', paths), ['train.eval_every']);
  assert.deepEqual(suggestKeys('every', 'checkpoint', paths), ['train.checkpoint_every']);
  assert.deepEqual(suggestKeys('often', 'eval', paths), []);
  const f = write('data:\n  name: sst2\n');
  assert.throws(() => loadConfig(TrainConfigSchema, f, ['eval.every=5']), (e: Error) => e.message === '--set eval.every: eval.every: unknown key (did you mean train.eval_every?)');
});

test('a --set value for a string key is taken as written when YAML would read it as something else', () => {
  const f = write('data:\n  name: sst2\n');
  // YAML reads "Review: {text}" as a mapping and "Review: {text" not at all; the key takes a string.
  assert.equal(loadConfig(TrainConfigSchema, f, ['prompt.template=Review: {text}']).config.prompt.template, 'Review: {text}');
  assert.equal(loadConfig(TrainConfigSchema, f, ['prompt.template={text}']).config.prompt.template, '{text}');
  assert.equal(loadConfig(TrainConfigSchema, f, ['prompt.template=a: b: {text}']).config.prompt.template, 'a: b: {text}');
  assert.equal(loadConfig(TrainConfigSchema, f, ['prompt.template="Q: {text}"']).config.prompt.template, 'Q: {text}');
  // Typed values are still YAML, and a non-string key still says what it wanted.
  assert.equal(loadConfig(TrainConfigSchema, f, ['name=123']).config.name, '123');
  assert.throws(() => loadConfig(TrainConfigSchema, f, ['train.steps=a: b: c']), (e: Error) => e.message === '--set train.steps: train.steps: expected number, got string "a: b: c"');
});

test('gta.guess_loss rl with a lambda_rl other than 1 is refused at the key: it would only rescale the one loss', () => {
  const f = write('data:\n  name: sst2\nmode: gta\ngta:\n  guess_loss: rl\n  lambda_rl: 0.5\n');
  assert.throws(() => loadConfig(TrainConfigSchema, f), /c\.yaml:6:\d+: gta\.lambda_rl: with gta\.guess_loss rl there is no L_SFT/);
  assert.equal(loadConfig(TrainConfigSchema, f, ['gta.lambda_rl=1']).config.gta.guess_loss, 'rl');
});
