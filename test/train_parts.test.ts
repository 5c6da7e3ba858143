import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchSampler } from '../src/train/sampler.js';
import { learningRate } from '../src/train/schedule.js';
import { parseAnswer, promptBuilder } from '../src/task/prompt.js';
import { Rng } from '../src/util/rng.js';
import { tinyTokenizer } from './helpers/tiny.js';

test('the sampler visits every example once per epoch, reproducibly, in length buckets', () => {
  const lengths = Array.from({ length: 103 }, (_, i) => (i * 37) % 50);
  const s = new BatchSampler(lengths, 8, 42, 4);
  const e0 = s.batchesOf(0);
  assert.equal(e0.length, s.batchesPerEpoch);
  assert.deepEqual(e0.flat().sort((a, b) => a - b), lengths.map((_, i) => i));
  assert.deepEqual(new BatchSampler(lengths, 8, 42, 4).batchesOf(0), e0);
  assert.notDeepEqual(s.batchesOf(1), e0);
  // a batch spans a narrower range of lengths than the whole data set
  const spread = e0.filter((b) => b.length === 8).map((b) => Math.max(...b.map((i) => lengths[i])) - Math.min(...b.map((i) => lengths[i])));
  assert.ok(Math.max(...spread) < 49);
  // walking the positions crosses into the next epoch
  let pos = { epoch: 0, batch: 0 };
  for (let i = 0; i < s.batchesPerEpoch; i++) pos = s.next(pos).next;
  assert.deepEqual(pos, { epoch: 1, batch: 0 });
});

test('learning rate: linear warmup, cosine decay to the floor', () => {
  const o = { lr: 1, weight_decay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, warmup_steps: 10, schedule: 'cosine' as const, min_lr_ratio: 0.1, grad_clip: 1 };
  assert.equal(learningRate(0, 110, o), 0.1);
  assert.equal(learningRate(9, 110, o), 1);
  assert.equal(learningRate(10, 110, o), 1);
  assert.ok(Math.abs(learningRate(60, 110, o) - 0.55) < 1e-12);
  assert.ok(Math.abs(learningRate(110, 110, o) - 0.1) < 1e-12);
  assert.ok(Math.abs(learningRate(60, 110, { ...o, schedule: 'linear' }) - 0.55) < 1e-12);
  assert.equal(learningRate(60, 110, { ...o, schedule: 'constant' }), 1);
});

test('prompts add tags by id, and answers parse only as a known label', () => {
  const tok = tinyTokenizer();
  const p = promptBuilder(tok, 'Review: {text} =>', 3);
  const ids = p.prompt('the movie was very good');
  assert.equal(ids[0], tok.bosId);
  assert.ok(ids.length <= 1 + tok.encode('Review: ').length + 3 + tok.encode(' =>').length);
  const target = p.answerTarget('good');
  assert.equal(target[0], tok.id('<answer>'));
  assert.equal(target[target.length - 1], tok.eosId);
  const labels = ['bad', 'good'];
  assert.equal(parseAnswer(tok, target, labels), 1);
  assert.equal(parseAnswer(tok, [tok.id('<answer>'), ...tok.encode('great'), tok.id('</answer>')], labels), null);
  assert.equal(parseAnswer(tok, [tok.id('<answer>'), ...tok.encode('good')], labels), null);
  // literal tag text in the data is not a tag
  assert.equal(parseAnswer(tok, tok.encode('<answer>good</answer>'), labels), null);
});

test('the RNG state round-trips: a restored stream continues identically', () => {
  const a = new Rng(7);
  for (let i = 0; i < 10; i++) a.next();
  const b = new Rng(a.state());
  assert.deepEqual(Array.from({ length: 5 }, () => a.nextU32()), Array.from({ length: 5 }, () => b.nextU32()));
  assert.notEqual(new Rng(1).nextU32(), new Rng(2).nextU32());
});
