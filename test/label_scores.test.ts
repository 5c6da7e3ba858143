/** Whole-label scoring: the most probable whole label, where token-by-token greedy decoding pools labels that share a first token. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import tf from '../src/util/tfjs.cjs';
import { buildInput, disposeInput } from '../src/model/batch.js';
import { labelSteps, scoreLabels, wholeLabelScores } from '../src/sample/label_scores.js';
import { tinyModel, tinyTokenizer, useWasm } from './helpers/tiny.js';

const CLOSE = 9;

test('two labels that share a first token: whole-label scoring picks the third label that token-by-token greedy misses', () => {
  // A = [5, 6] and B = [5, 7] share token 5; C = [8]. First step: p(5) = 0.6 (A and B pooled), p(8) = 0.4;
  // after 5: p(6) = p(7) = 0.5. Whole labels: A = B = 0.3 < C = 0.4. Greedy takes 5 (0.6), then A or B.
  const labels = [[5, 6], [5, 7], [8]];
  const steps = labelSteps(labels, CLOSE);
  assert.deepEqual(steps[0].map((s) => [s.position, s.target, s.allowed]), [[0, 5, [5, 8]], [1, 6, [6, 7]]]);
  assert.deepEqual(steps[2].map((s) => [s.position, s.target, s.allowed]), [[0, 8, [5, 8]]], 'the closing tag after C is forced');
  const logit = (l: number, s: number, token: number) => {
    const position = steps[l][s].position;
    if (position === 0) return Math.log(token === 5 ? 0.6 : 0.4);
    return Math.log(0.5);
  };
  const scores = wholeLabelScores(steps, logit);
  assert.ok(Math.abs(scores[0] - Math.log(0.3)) < 1e-12 && Math.abs(scores[1] - Math.log(0.3)) < 1e-12 && Math.abs(scores[2] - Math.log(0.4)) < 1e-12, String(scores));
  assert.equal(scores.indexOf(Math.max(...scores)), 2);
  // greedy's first choice under the same restriction is token 5, so it can only answer A or B
  assert.ok(logit(0, 0, 5) > logit(2, 0, 8));
});

test('a label that is a prefix of another pays for stopping: the closing tag is a choice there', () => {
  const steps = labelSteps([[5], [5, 6]], CLOSE);
  assert.deepEqual(steps[0].map((s) => [s.position, s.target, s.allowed]), [[1, CLOSE, [6, CLOSE]]]);
  assert.deepEqual(steps[1].map((s) => [s.position, s.target, s.allowed]), [[1, 6, [6, CLOSE]]]);
});

test('scoreLabels on a model equals the restricted log-probabilities of a full forward pass over prefix + label + close', async () => {
  await useWasm();
  const tok = tinyTokenizer();
  const model = tinyModel(tok, 4);
  const labels = ['very good', 'very bad', 'good'].map((l) => tok.encode(l));
  const close = tok.id('</answer>');
  const prefixes = [tok.encode('the movie was'), tok.encode('a film'), tok.encode('the plot is very')].map((p) => [...p, tok.id('<answer>')]);
  const { best, scores } = scoreLabels(model, prefixes, labels, close, tok.padId);
  const steps = labelSteps(labels, close);
  prefixes.forEach((prefix, p) => {
    const expected = labels.map((label, l) => {
      const seq = [...prefix, ...label, close];
      const { input, layout } = buildInput([seq], tok.padId);
      const logits = tf.tidy(() => model.logits(tf.reshape(model.forward(input).hidden, [-1, model.arch.d_model]) as tf.Tensor2D).arraySync() as number[][]);
      disposeInput(input);
      return steps[l].reduce((sum, s) => {
        const row = logits[layout.pad[0] + prefix.length + s.position - 1];
        const lse = Math.log(s.allowed.reduce((a, id) => a + Math.exp(row[id]), 0));
        return sum + row[s.target] - lse;
      }, 0);
    });
    expected.forEach((e, l) => assert.ok(Math.abs(e - scores[p][l]) < 1e-4, `prefix ${p} label ${l}: ${scores[p][l]} vs ${e}`));
    assert.equal(best[p], expected.indexOf(Math.max(...expected)));
  });
  model.dispose();
});
