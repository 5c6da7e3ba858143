/**
 * configs/paper/: the paper's recipe at its scale (Qwen2.5-3B), which needs weights and a GPU this
 * machine lacks. What can be checked without them is checked here: every config loads with real keys,
 * each is named for its dataset and mode and follows the paper's settings, and every cell of the
 * comparison (each dataset's config with each arm's overrides) is a valid run config.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { CompareConfigSchema, TrainConfigSchema } from '../src/config/schema.js';
import { ROOT } from './helpers/cli.js';

const DIR = path.join(ROOT, 'configs', 'paper');

test("configs/paper: a run config per dataset and mode, named for them, with the paper's settings", () => {
  const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.yaml') && !f.startsWith('compare-'));
  assert.equal(files.length, 12);
  for (const f of files) {
    const { config } = loadConfig(TrainConfigSchema, path.join(DIR, f));
    assert.equal(`${config.data.name}-${config.mode}.yaml`, f);
    assert.equal(config.init, 'Qwen/Qwen2.5-3B');
    assert.equal(config.train.precision, 'bf16-true');
    assert.equal(config.train.epochs, 3);
    if (config.mode !== 'sft') {
      assert.deepEqual([config.rl.group_size, config.rl.num_iterations, config.rl.beta], [16, 4, 0.01], f);
      assert.equal(config.train.batch_size % config.rl.group_size, 0, f);
    }
  }
});

test('configs/paper/compare-qwen2.5-3b.yaml: every cell (dataset x arm, the arm\'s overrides applied) is a valid run config', () => {
  const { config: sweep } = loadConfig(CompareConfigSchema, path.join(DIR, 'compare-qwen2.5-3b.yaml'));
  assert.deepEqual(sweep.datasets, ['sst5', 'massive_scenario', 'emotion', 'bbc_news']);
  for (const dataset of sweep.datasets) {
    for (const arm of sweep.arms!) {
      const file = path.join(ROOT, sweep.config_template.replace('{dataset}', dataset).replace('{mode}', arm.mode));
      const { config } = loadConfig(TrainConfigSchema, file, [...sweep.set, ...(arm.set ?? [])]);
      assert.equal(config.mode, arm.mode);
      assert.equal(Boolean(config.train.lora), arm.name.endsWith('-lora'), arm.name);
    }
  }
});
