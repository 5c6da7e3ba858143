/**
 * GTA's loss masking, checked numerically on real structured rollouts of a tiny model:
 *  - the RL loss has exactly zero gradient at every logits row that predicts a guess-span token, and
 *    a non-zero one at the think and answer tokens it trains;
 *  - L_SFT (cross-entropy on the gold label after `prompt <guess>`) has exactly zero gradient at the
 *    think and answer positions of the full sequence, and the same value with or without them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import tf from '../src/util/tfjs.cjs';
import { gatherRows } from '../src/backend/gather_rows.js';
import { buildContinuation, buildInput, concatenatedRows, disposeInput, targetPositions } from '../src/model/batch.js';
import { grpoLoss } from '../src/train/grpo.js';
import { rlTokenLogp, rlTokenTensors, selectRlTokens, trainedLength } from '../src/train/rl_tokens.js';
import { sampleCompletions } from '../src/sample/rollout.js';
import { lossAtRows } from '../src/train/sft.js';
import { structureSpec } from '../src/task/structure.js';
import { Rng } from '../src/util/rng.js';
import { stopGradient } from '../src/util/tf_extra.js';
import { tinyModel, tinyTokenizer, useWasm } from './helpers/tiny.js';

const labels = ['good', 'bad'];

/** Sum of |values| of each row of a [R, C] gradient. */
function rowMass(g: tf.Tensor2D): Float32Array {
  return tf.tidy(() => tf.sum(tf.abs(g), 1).dataSync() as Float32Array);
}

test('GTA: the RL loss has zero gradient through guess-span positions, non-zero through think and answer', async () => {
  await useWasm();
  const tok = tinyTokenizer();
  const model = tinyModel(tok, 7);
  const spec = structureSpec(tok, 'gta', labels, 2);
  const prompts = [tok.encode('good movie'), tok.encode('the plot was bad'), tok.encode('a film'), tok.encode('very awful')];
  const comps = sampleCompletions(model, prompts, { spec, decoding: 'structured', temperature: 1, topP: 1, maxNewTokens: 30, greedy: false, rng: new Rng(3), padId: tok.padId });
  assert.ok(comps.every((c) => c.spans.includes('guess') && c.spans.includes('think') && c.spans.includes('answer')));
  const seqs = prompts.map((p, i) => [...p, ...comps[i].tokens]);
  const { input, layout } = buildInput(seqs, tok.padId);
  const V = model.arch.vocab_size;
  const sel = selectRlTokens(comps, concatenatedRows(prompts.map((p) => p.length), layout), { format: 'gta', maskTruncated: false, spec, vocab: V });
  const t = rlTokenTensors(sel);
  const rows = tf.tensor1d(sel.rows, 'int32');
  const adv = tf.tensor1d([1, -1, 0.5, -0.5]);
  // The loss as a function of the logits at every position of the batch, [B*T, V].
  const all = tf.randomNormal([layout.B * layout.T, V], 0, 1, 'float32', 5) as tf.Tensor2D;
  const grad = tf.grad((x: tf.Tensor) => {
    const { logp } = rlTokenLogp(gatherRows(x as tf.Tensor2D, rows) as tf.Tensor2D, t, sel, 1);
    return grpoLoss({ logp, oldLogp: stopGradient(logp), adv, mask: t.mask, eps: 0.2, epsHigh: 0.2, beta: 0, lossType: 'grpo', maxCompletionLength: sel.L }).loss;
  })(all) as tf.Tensor2D;
  const mass = rowMass(grad);
  let guess = 0;
  let trained = 0;
  comps.forEach((c, i) => {
    c.tokens.forEach((_, j) => {
      const row = i * layout.T + layout.pad[i] + prompts[i].length + j - 1;
      if (c.spans[j] === 'guess') {
        guess++;
        assert.equal(mass[row], 0, `guess token ${j} of completion ${i} has gradient ${mass[row]}`);
      } else if (sel.rows.includes(row)) {
        trained++;
        assert.ok(mass[row] > 0, `${c.spans[j]} token ${j} of completion ${i} has no gradient`);
      }
    });
  });
  assert.ok(guess > 0 && trained > 0, `guess tokens ${guess}, trained think/answer tokens ${trained}`);
  const thinkOrAnswer = comps.flatMap((c, i) => c.tokens.map((_, j) => ({ i, j, span: c.spans[j] }))).filter((x) => x.span === 'think' || x.span === 'answer');
  assert.ok(thinkOrAnswer.some(({ i, j }) => sel.rows.includes(i * layout.T + layout.pad[i] + prompts[i].length + j - 1)));
  // every row outside the selected ones (prompts, padding) is untouched too
  const selected = new Set(sel.rows);
  mass.forEach((m, r) => assert.ok(selected.has(r) || m === 0, `row ${r} outside the RL tokens has gradient ${m}`));
  tf.dispose([grad, all, adv, rows, ...Object.values(t)]);
  disposeInput(input);
  model.dispose();
});

test("GTA(RL) (gta.guess_loss rl): the guess's label tokens are in the RL loss, with think and answer; the rest as in GTA", async () => {
  await useWasm();
  const tok = tinyTokenizer();
  const model = tinyModel(tok, 7);
  const spec = structureSpec(tok, 'gta', labels, 2);
  const prompts = [tok.encode('good movie'), tok.encode('the plot was bad')];
  const comps = sampleCompletions(model, prompts, { spec, decoding: 'structured', temperature: 1, topP: 1, maxNewTokens: 30, greedy: false, rng: new Rng(3), padId: tok.padId });
  const rowOf = (i: number, j: number) => i * 100 + j;
  const pick = (guessInRl: boolean) => new Set(selectRlTokens(comps, rowOf, { format: 'gta', guessInRl, maskTruncated: false, spec, vocab: model.arch.vocab_size }).rows);
  const [gta, gtaRl] = [pick(false), pick(true)];
  comps.forEach((c, i) =>
    c.tokens.forEach((_, j) => {
      const row = rowOf(i, j);
      if (c.spans[j] !== 'guess') assert.equal(gtaRl.has(row), gta.has(row), `${c.spans[j]} token ${j}`);
      else assert.ok(!gta.has(row), 'GTA masks the guess');
    }),
  );
  // the guess's label is a choice among the labels: a decision the RL loss now trains
  const guessRows = comps.flatMap((c, i) => c.tokens.map((_, j) => (c.spans[j] === 'guess' && gtaRl.has(rowOf(i, j)) ? 1 : 0))).reduce((a: number, b) => a + b, 0);
  assert.ok(guessRows >= comps.length, `${guessRows} guess tokens trained`);
  model.dispose();
});

test('GTA: L_SFT has zero gradient through think and answer positions, and does not see them', async () => {
  await useWasm();
  const tok = tinyTokenizer();
  const model = tinyModel(tok, 8);
  const tag = (s: Parameters<typeof tok.id>[0]) => tok.id(s);
  const prompt = tok.encode('the plot was bad');
  const gold = tok.encode('bad');
  const guessPart = [...prompt, tag('<guess>'), ...gold];
  const tail = [tag('</guess>'), tag('<think>'), ...tok.encode('very awful'), tag('</think>'), tag('<answer>'), ...gold, tag('</answer>')];
  const from = [prompt.length + 1];
  const sft = (seq: number[]) => {
    const { input, layout } = buildInput([seq], tok.padId);
    const { rows, targets } = targetPositions([guessPart], from, layout);
    const hidden = model.forward(input).hidden;
    const { value, grads } = tf.valueAndGrads((h: tf.Tensor) => lossAtRows(model, h as tf.Tensor3D, rows, targets))([hidden]);
    const out = { loss: value.dataSync()[0], mass: rowMass(tf.reshape(grads[0], [layout.T, -1]) as tf.Tensor2D), pad: layout.pad[0] };
    tf.dispose([hidden, value, ...grads]);
    disposeInput(input);
    return out;
  };
  const full = sft([...guessPart, ...tail]);
  const short = sft(guessPart);
  assert.ok(Math.abs(full.loss - short.loss) < 1e-6, `L_SFT ${full.loss} with think/answer vs ${short.loss} without`);
  for (let p = guessPart.length; p < guessPart.length + tail.length; p++) {
    assert.equal(full.mass[full.pad + p], 0, `position ${p} (think/answer) has gradient ${full.mass[full.pad + p]}`);
  }
  // the positions that predict the gold label do carry the loss
  for (let k = 0; k < gold.length; k++) assert.ok(full.mass[full.pad + prompt.length + k] > 0);
  model.dispose();
});

test('rl.mask_truncated_completions drops every token of a truncated completion from the RL loss, and only those', async () => {
  await useWasm();
  const tok = tinyTokenizer();
  const model = tinyModel(tok, 9);
  const spec = structureSpec(tok, 'rl', labels, 3);
  const prompts = [tok.encode('good movie'), tok.encode('the plot was bad'), tok.encode('a film')];
  const comps = sampleCompletions(model, prompts, { spec, decoding: 'structured', temperature: 1, topP: 1, maxNewTokens: 30, greedy: false, rng: new Rng(4), padId: tok.padId });
  comps[1].truncated = true;
  const seqs = prompts.map((p, i) => [...p, ...comps[i].tokens]);
  const { input, layout } = buildInput(seqs, tok.padId);
  const select = (maskTruncated: boolean) => selectRlTokens(comps, concatenatedRows(prompts.map((p) => p.length), layout), { format: 'rl', maskTruncated, spec, vocab: model.arch.vocab_size });
  const all = select(false);
  const masked = select(true);
  const perRow = (s: typeof all) => [0, 1, 2].map((i) => s.mask.slice(i * s.L, (i + 1) * s.L).reduce((a, b) => a + b, 0));
  const [r0, r1, r2] = perRow(all);
  assert.ok(r1 > 0, 'the truncated completion has trainable tokens when not masked');
  assert.deepEqual(perRow(masked), [r0, 0, r2]);
  assert.equal(masked.M, all.M - r1);
  disposeInput(input);
  model.dispose();
});

test('the policy update reads its completions only up to the last token it trains: the same log-probabilities from the cut continuation', async () => {
  await useWasm();
  const tok = tinyTokenizer();
  const model = tinyModel(tok, 5);
  const spec = structureSpec(tok, 'gta', labels, 3);
  const prompts = [tok.encode('good movie'), tok.encode('the plot was bad')];
  const comps = sampleCompletions(model, prompts, { spec, decoding: 'structured', temperature: 1, topP: 1, maxNewTokens: 30, greedy: false, repeat: 3, rng: new Rng(8), padId: tok.padId });
  const pick = { format: 'gta' as const, maskTruncated: false, spec, vocab: model.arch.vocab_size };
  const trained = trainedLength(comps, pick);
  assert.equal(trained, Math.max(...selectRlTokens(comps, (_, j) => j, pick).rows), 'the last trained token, as selectRlTokens picks them');
  assert.ok(trained < Math.max(...comps.map((c) => c.tokens.length)), 'the closing tokens are not trained, so there is something to cut');
  const logpOf = (cut: number) =>
    tf.tidy(() => {
      const cont = buildContinuation(prompts, comps.map((c) => c.tokens.slice(0, cut)), 3, tok.padId);
      const sel = selectRlTokens(comps, cont.rowOf, pick);
      const hidden = model.forwardShared(cont.prompt, cont.completion, 3);
      const out = rlTokenLogp(model.logits(gatherRows(hidden, tf.tensor1d(sel.rows, 'int32')) as tf.Tensor2D), rlTokenTensors(sel), sel, 1).logp.dataSync();
      disposeInput(cont.prompt);
      disposeInput(cont.completion);
      return out;
    });
  const full = logpOf(Infinity);
  const cut = logpOf(trained);
  assert.equal(cut.length, full.length);
  assert.ok(full.some((x) => x !== 0));
  full.forEach((x, i) => assert.ok(Math.abs(x - cut[i]) <= 1e-5, `log-probability ${i}: ${cut[i]} from the cut continuation, ${x} from the whole`));
});
