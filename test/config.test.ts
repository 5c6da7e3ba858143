import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { CompareConfigSchema, PretrainConfigSchema, TrainConfigSchema } from '../src/config/schema.js';
import { tmpDir } from './helpers/tiny.js';

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
