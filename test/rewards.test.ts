/**
 * rl.rewards as a list with rewards of the user's own (src/task/reward_plugins.ts): the config forms,
 * the shipped ordinal reward (partial credit for SST-5's ordered labels), what a module is given, the
 * one-line errors naming the module's file, and a tiny RL run logging a module's reward.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { TrainConfigSchema } from '../src/config/schema.js';
import { loadRewards } from '../src/task/reward_plugins.js';
import { scoreRewards } from '../src/task/rewards.js';
import { tmpDir } from './helpers/tiny.js';
import { gta, tinyConfig } from './helpers/cli.js';

const SST5 = ['very negative', 'negative', 'neutral', 'positive', 'very positive'];
const parsed = (answer: number | null, guess: number | null = null) => ({ answer, guess, wellFormed: answer !== null });

function write(dir: string, name: string, text: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
}

test('rl.rewards: a weight per built-in is the list of built-ins; a list names built-ins and modules; bad entries are named', () => {
  const dir = tmpDir();
  const f = write(dir, 'c.yaml', 'data:\n  name: sst5\nmode: rl\n');
  assert.deepEqual(loadConfig(TrainConfigSchema, f).config.rl.rewards, [{ name: 'accuracy', weight: 1 }, { name: 'format', weight: 1 }]);
  assert.deepEqual(loadConfig(TrainConfigSchema, f, ['rl.rewards={format: 0.5}']).config.rl.rewards, [{ name: 'accuracy', weight: 1 }, { name: 'format', weight: 0.5 }]);
  const list = write(dir, 'l.yaml', 'data:\n  name: sst5\nmode: rl\nrl:\n  rewards:\n    - { name: accuracy }\n    - { name: ordinal, module: rewards/ordinal.mjs, weight: 0.5 }\n');
  const { config, resolvedYaml } = loadConfig(TrainConfigSchema, list);
  assert.deepEqual(config.rl.rewards, [{ name: 'accuracy', weight: 1 }, { name: 'ordinal', module: 'rewards/ordinal.mjs', weight: 0.5 }]);
  // the resolved config (what a resume reads) loads again to the same list
  assert.deepEqual(loadConfig(TrainConfigSchema, write(dir, 'r.yaml', resolvedYaml)).config.rl.rewards, config.rl.rewards);
  const bad = write(dir, 'b.yaml', 'data:\n  name: sst5\nmode: rl\nrl:\n  rewards:\n    - { name: accuracy }\n    - { name: ordinal, weight: 0.5 }\n    - { name: accuracy, weight: 2 }\n');
  assert.throws(() => loadConfig(TrainConfigSchema, bad), (e: Error) => {
    assert.deepEqual(e.message.split('\n'), [
      `2 problems in ${bad}:`,
      `  ${bad}:7:9: rl.rewards.1.name: 'ordinal' is not a built-in reward (accuracy, format); give module: FILE for a reward of your own`,
      `  ${bad}:8:9: rl.rewards.2.name: reward 'accuracy' is named twice`,
    ]);
    return true;
  });
});

test('the shipped ordinal reward gives partial credit by distance in the label order', async () => {
  const [ordinal] = await loadRewards([{ name: 'ordinal', module: 'rewards/ordinal.mjs', weight: 0.5 }], SST5);
  const gold = 0; // very negative
  const s = scoreRewards([0, 1, 2, 4, null].map((a) => ({ parsed: parsed(a), gold })), [ordinal]);
  assert.deepEqual(s.components.ordinal, [1, 0.75, 0.5, 0, 0]);
  assert.deepEqual(s.total, [0.5, 0.375, 0.25, 0, 0]);
});

test("a reward module gets the completion's labels and text, the gold label, the example's row and the label list", async () => {
  const dir = tmpDir();
  const file = write(dir, 'mine.mjs', `export function bonus(c, gold, row, info) {
  return JSON.stringify([c.guess, c.answer, c.think, c.well_formed, gold, row.source, info.labels.length]) === JSON.stringify(['negative', 'neutral', 'because', true, 'neutral', 'web', 5]) ? 2 : 1;
}\n`);
  const [bonus] = await loadRewards([{ name: 'bonus', module: file, weight: 1 }], SST5);
  const x = { parsed: parsed(2, 1), gold: 2, row: { text: 't', label: 'neutral', source: 'web' }, text: () => ({ think: 'because', completion: '...' }) };
  assert.deepEqual(scoreRewards([x, { ...x, gold: 3 }], [bonus]).components.bonus, [2, 1]);
});

test('a bad reward module is one line naming its file', async () => {
  const dir = tmpDir();
  const load = (file: string) => loadRewards([{ name: 'r', module: file, weight: 1 }], SST5);
  const missing = path.join(dir, 'nope.mjs');
  await assert.rejects(load(missing), (e: Error) => e.message === `rl.rewards r: ${missing}: no such file`);
  const broken = write(dir, 'broken.mjs', 'export default function (c { return 1; }\n');
  await assert.rejects(load(broken), (e: Error) => e.message.startsWith(`rl.rewards r: ${broken}: cannot load the module (`) && !e.message.includes('\n'));
  const none = write(dir, 'none.mjs', 'export const x = 1;\n');
  await assert.rejects(load(none), (e: Error) => e.message === `rl.rewards r: ${none}: exports no function (export default, or export one named r)`);
  const nan = write(dir, 'nan.mjs', 'export default () => NaN;\n');
  const [r] = await load(nan);
  assert.throws(() => r.score({ parsed: parsed(0), gold: 1 }), (e: Error) => e.message === `rl.rewards r: ${nan}: the reward returned null, not a finite number (answer "very negative", gold "negative")`);
  const throws = write(dir, 'throws.mjs', 'export default () => { throw new Error("no row"); };\n');
  const [t] = await load(throws);
  assert.throws(() => t.score({ parsed: parsed(0), gold: 1 }), (e: Error) => e.message === `rl.rewards r: ${throws}: the reward threw: no row`);
});

test('an RL run logs a module reward beside the built-ins; a bad module stops it before the run directory exists', () => {
  const dir = tmpDir();
  const rewards = 'rl:\n  group_size: 4\n  think_max_tokens: 2\n  rewards:\n    - { name: accuracy }\n    - { name: ordinal, module: rewards/ordinal.mjs, weight: 0.5 }\n';
  const cfg = tinyConfig(dir, `mode: rl\n${rewards}`);
  const short = ['--set', 'train.steps=4', '--set', 'train.log_every=2', '--set', 'train.eval_every=100', '--set', 'data.max_text_tokens=8', '--set', 'model.max_seq_len=40', '--log-level', 'warn'];
  // tinyConfig's train.dropout 0 suits rl; run from gta's folder so the relative module path is the shipped one
  const r = gta(['train', '--config', cfg, ...short], path.resolve('.'));
  assert.equal(r.code, 0, r.stderr);
  const runDir = r.stdout.split('\n')[0];
  const train = fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.split === 'train');
  assert.equal(train.length, 2);
  for (const l of train) {
    assert.ok('reward/ordinal/mean' in l && 'reward/accuracy/mean' in l && !('reward/format/mean' in l), Object.keys(l).join(' '));
    // two labels: ordinal credit is accuracy's (1 at gold, 0 at the other), so total = 1.5 x accuracy
    assert.equal(l['reward/ordinal/mean'], l['reward/accuracy/mean']);
    assert.ok(Math.abs(l['reward/total/mean'] - 1.5 * l['reward/accuracy/mean']) < 1e-9);
  }
  const bad = gta(['train', '--config', cfg, ...short, '--set', 'rl.rewards=[{name: ordinal, module: nowhere/ordinal.mjs}]', '--set', `output_dir=${path.join(dir, 'bad')}`], path.resolve('.'));
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr.trim(), `gta: error: rl.rewards ordinal: ${path.resolve('nowhere/ordinal.mjs')}: no such file`);
  assert.ok(!fs.existsSync(path.join(dir, 'bad')));
});
