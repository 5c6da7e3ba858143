import { test } from 'node:test';
import assert from 'node:assert/strict';
import tf from '../src/util/tfjs.cjs';
import { initBackend } from '../src/backend/select.js';
import { aggregateLoss, clippedSurrogate, groupAdvantages, grpoLoss, k3Kl } from '../src/train/grpo.js';
import { combineGradients, gradCosine, type Grads } from '../src/train/grad_constraint.js';

await initBackend('wasm');

/** float64 math in JS: tight tolerance. */
const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);
/** float32 tensors: ~1e-6 relative precision. */
const closeAll = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5) => {
  assert.equal(a.length, b.length, `length ${a.length} != ${b.length}`);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `[${i}] ${a[i]} != ${b[i]}`);
};
const num = (t: tf.Tensor) => t.dataSync()[0];

// ---------------------------------------------------------------------------------------------------
// Advantages. Rewards [1,0,1,0 | 2,2,2,2]:
//   group 1: mean 0.5, deviations ±0.5, unbiased var (4 * 0.25) / 3 = 1/3, std 0.5773502691896258
//   group 2: all equal, std 0, advantages 0
//   batch:   mean 10/8 = 1.25, squared deviations 0.0625, 1.5625, 0.0625, 1.5625, 4 * 0.5625 = 5.5,
//            unbiased var 5.5 / 7 = 0.7857142857142857, std 0.8864052604279183
test('groupAdvantages: group scale divides by the unbiased group std + 1e-4', () => {
  const r = groupAdvantages([1, 0, 1, 0, 2, 2, 2, 2], 4, 'group');
  const a = 0.5 / (0.5773502691896258 + 1e-4); // 0.5 / 0.5774502691896258
  close(a, 0.8658754298, 1e-9);
  assert.equal(r.advantages.length, 8);
  [a, -a, a, -a, 0, 0, 0, 0].forEach((v, i) => close(r.advantages[i], v));
  close(r.groupStd[0], 0.5773502691896258);
  close(r.groupStd[1], 0);
  close(r.fracZeroStd, 0.5);
});

test('groupAdvantages: batch scale divides by the unbiased std of all rewards + 1e-4', () => {
  const r = groupAdvantages([1, 0, 1, 0, 2, 2, 2, 2], 4, 'batch');
  const a = 0.5 / (0.8864052604279183 + 1e-4); // 0.5 / 0.8865052604279183
  close(a, 0.5640124456, 1e-9);
  [a, -a, a, -a, 0, 0, 0, 0].forEach((v, i) => close(r.advantages[i], v));
  // fracZeroStd always refers to each group's own std.
  close(r.fracZeroStd, 0.5);
});

test('groupAdvantages: none only subtracts the group mean', () => {
  // groups [3,1] (mean 2), [0,0] (mean 0), [5,2] (mean 3.5, unbiased std |5-2|/sqrt(2) = 2.1213203435596424)
  const r = groupAdvantages([3, 1, 0, 0, 5, 2], 2, 'none');
  assert.deepEqual(r.advantages, [1, -1, 0, 0, 1.5, -1.5]);
  close(r.groupStd[0], Math.SQRT2);
  close(r.groupStd[2], 2.1213203435596424);
  close(r.fracZeroStd, 1 / 3);
});

test('groupAdvantages: groups of one have std 0; bad layouts throw', () => {
  const r = groupAdvantages([0.3, 0.7], 1, 'group');
  assert.deepEqual(r.advantages, [0, 0]);
  close(r.fracZeroStd, 1);
  assert.throws(() => groupAdvantages([1, 2, 3], 2, 'group'), /do not split/);
  assert.throws(() => groupAdvantages([1, 2], 0, 'group'), /positive integer/);
});

// ---------------------------------------------------------------------------------------------------
// Clipped surrogate. eps = 0.2, epsHigh = 0.28: clip range [0.8, 1.28]; ratios 0.5, 1, 1.5 per row.
//   A = +2: r=0.5 -> -min(1.0, 1.6)  = -1.0  (clip not active: ratio low but A > 0)
//           r=1   -> -min(2, 2)      = -2
//           r=1.5 -> -min(3.0, 2.56) = -2.56 (clipped)
//   A = -1: r=0.5 -> -min(-0.5, -0.8) = 0.8  (clipped)
//           r=1   -> 1
//           r=1.5 -> -min(-1.5, -1.28) = 1.5 (clip not active: ratio high but A < 0)
const RATIOS = [0.5, 1, 1.5];
function surrogateInputs() {
  const logp = tf.tensor2d([RATIOS.map(Math.log), RATIOS.map(Math.log)]);
  const oldLogp = tf.zeros([2, 3]) as tf.Tensor2D;
  const adv = tf.tensor1d([2, -1]);
  return { logp, oldLogp, adv };
}

test('clippedSurrogate: both clip sides and both advantage signs, against the formula', () => {
  tf.tidy(() => {
    const { logp, oldLogp, adv } = surrogateInputs();
    const { perToken, clipped } = clippedSurrogate(logp, oldLogp, adv, 0.2, 0.28);
    closeAll(perToken.dataSync(), [-1.0, -2, -2.56, 0.8, 1, 1.5]);
    assert.deepEqual(Array.from(clipped.dataSync()), [0, 0, 1, 1, 0, 0]);
    // The same numbers from the formula written out directly.
    const direct = [2, -1].flatMap((A) =>
      RATIOS.map((r) => -Math.min(r * A, Math.min(Math.max(r, 0.8), 1.28) * A)),
    );
    closeAll(perToken.dataSync(), direct);
  });
});

test('k3Kl: exp(ref - logp) - (ref - logp) - 1', () => {
  tf.tidy(() => {
    // d = ref - logp = [0, 1, -1] -> [0, e - 2, 1/e]
    const kl = k3Kl(tf.tensor2d([[0, -1, 1]]), tf.tensor2d([[0, 0, 0]]));
    closeAll(kl.dataSync(), [0, Math.E - 2, 1 / Math.E]);
    closeAll([Math.E - 2, 1 / Math.E], [0.7182818, 0.3678794], 1e-7);
  });
});

// ---------------------------------------------------------------------------------------------------
// Aggregation: losses [[1,2,3],[4,5,6],[7,8,9]], mask [[1,1,0],[1,0,0],[0,0,0]]; masked sum 7 over 3 tokens.
//   grpo:    mean((1+2)/2, 4/1, 0/max(1,0)) = (1.5 + 4 + 0) / 3 = 1.8333333
//   bnpo:    7 / 3 = 2.3333333
//   dr_grpo: 7 / (3 * 4) = 0.5833333  (maxCompletionLength 4)
//   dapo:    7 / 3 (the same as bnpo in one process)
test('aggregateLoss: each loss type on a fixed masked example', () => {
  tf.tidy(() => {
    const loss = tf.tensor2d([[1, 2, 3], [4, 5, 6], [7, 8, 9]]);
    const mask = tf.tensor2d([[1, 1, 0], [1, 0, 0], [0, 0, 0]]);
    close(num(aggregateLoss(loss, mask, 'grpo', 4)), 1.8333333, 1e-6);
    close(num(aggregateLoss(loss, mask, 'bnpo', 4)), 2.3333333, 1e-6);
    close(num(aggregateLoss(loss, mask, 'dr_grpo', 4)), 0.5833333, 1e-6);
    close(num(aggregateLoss(loss, mask, 'dapo', 4)), 2.3333333, 1e-6);
    // An all-zero mask gives 0, not NaN.
    close(num(aggregateLoss(loss, tf.zeros([3, 3]) as tf.Tensor2D, 'bnpo', 4)), 0);
  });
});

test('grpoLoss: loss, clipRatio and kl metrics', () => {
  tf.tidy(() => {
    const { logp, oldLogp, adv } = surrogateInputs();
    const mask = tf.tensor2d([[1, 1, 1], [1, 1, 0]]);
    const base = { logp, oldLogp, adv, mask, eps: 0.2, epsHigh: 0.28, lossType: 'bnpo' as const, maxCompletionLength: 3 };
    // Surrogate on the 5 counted tokens: -1 - 2 - 2.56 + 0.8 + 1 = -3.76; bnpo / 5 = -0.752.
    // Clipped among them: (0,2) and (1,0) -> 2 / 5.
    const noRef = grpoLoss({ ...base, beta: 0.5 });
    close(num(noRef.loss), -0.752, 1e-6);
    close(num(noRef.clipRatio), 0.4, 1e-6);
    close(num(noRef.kl), 0); // no reference given: no KL term, kl metric 0
    // Reference: ref - logp = 1 on every token, k3 = e - 2 everywhere; beta 0.5 adds 0.5 * (e - 2).
    const refLogp = tf.add(logp, 1) as tf.Tensor2D;
    const withRef = grpoLoss({ ...base, refLogp, beta: 0.5 });
    close(num(withRef.loss), -0.752 + 0.5 * (Math.E - 2), 1e-6);
    close(num(withRef.kl), Math.E - 2, 1e-6);
    // beta = 0 ignores the reference.
    close(num(grpoLoss({ ...base, refLogp, beta: 0 }).loss), -0.752, 1e-6);
  });
});

test('grpoLoss: masked tokens get exactly zero gradient w.r.t. logp', () => {
  tf.tidy(() => {
    // On-policy (logp = oldLogp), so the ratio is 1 and no token is clipped.
    const lp = [
      [-0.5, -1.0, -2.0, -0.3],
      [-1.5, -0.2, -0.7, -3.0],
      [-0.9, -0.4, -1.1, -0.6],
    ];
    const logp = tf.tensor2d(lp);
    const oldLogp = tf.tensor2d(lp);
    const refLogp = tf.tensor2d(lp.map((row) => row.map((v) => v - 0.3)));
    const adv = tf.tensor1d([1.5, -2, 0.7]);
    const maskRows = [
      [1, 1, 0, 0],
      [1, 1, 1, 0],
      [0, 0, 0, 0],
    ];
    const mask = tf.tensor2d(maskRows);
    for (const lossType of ['grpo', 'bnpo', 'dr_grpo', 'dapo'] as const) {
      for (const beta of [0, 0.04]) {
        const g = tf.grad((x: tf.Tensor) =>
          grpoLoss({ logp: x as tf.Tensor2D, oldLogp, refLogp, adv, mask, eps: 0.2, epsHigh: 0.2, beta, lossType, maxCompletionLength: 4 }).loss,
        )(logp);
        const gv = g.arraySync() as number[][];
        for (let i = 0; i < 3; i++) {
          for (let j = 0; j < 4; j++) {
            // === so that -0 (masked token times a negative upstream gradient) counts as zero.
            if (maskRows[i][j] === 0) assert.ok(gv[i][j] === 0, `${lossType} beta ${beta}: masked [${i}][${j}] got ${gv[i][j]}`);
            else assert.notEqual(gv[i][j], 0, `${lossType} beta ${beta}: [${i}][${j}] got no gradient`);
          }
        }
        if (lossType === 'grpo' && beta === 0) {
          // d/dlogp of -ratio*A at ratio 1 is -A, divided by the row's length and by N = 3.
          closeAll([gv[0][0], gv[1][2]], [-1.5 / 2 / 3, 2 / 3 / 3], 1e-6);
        }
      }
    }
  });
});

test('grpoLoss: clipped tokens get no surrogate gradient', () => {
  tf.tidy(() => {
    const { logp, oldLogp, adv } = surrogateInputs();
    const mask = tf.ones([2, 3]) as tf.Tensor2D;
    const g = tf.grad((x: tf.Tensor) =>
      grpoLoss({ logp: x as tf.Tensor2D, oldLogp, adv, mask, eps: 0.2, epsHigh: 0.28, beta: 0, lossType: 'bnpo', maxCompletionLength: 3 }).loss,
    )(logp);
    // Clipped: (0,2) and (1,0). Elsewhere d/dlogp = -A * ratio / 6.
    closeAll(g.dataSync(), [(-2 * 0.5) / 6, -2 / 6, 0, 0, 1 / 6, 1.5 / 6], 1e-6);
  });
});

// ---------------------------------------------------------------------------------------------------
// Gradient combination. Two parameters 'a' [2] and 'b' [1]; dot products over both together.
//   conflicting: gSft = {a:[1,0], b:[1]}, gRl = {a:[-1,1], b:[-1]}
//     gSft·gRl = -1 + 0 - 1 = -2, |gSft|² = 2, |gRl|² = 3, cos = -2/sqrt(6) = -0.8164966
//     PCGrad: gSft' = gSft + (2/3) gRl = {a:[1/3, 2/3], b:[1/3]};  gRl' = gRl + gSft = {a:[0,1], b:[0]}
//   aligned: gSft = {a:[1,0], b:[1]}, gRl = {a:[1,1], b:[0]}: dot 1, cos 1/2
const LS = 1;
const LR = 0.5;
function grads(a: number[], b: number[]): Grads {
  return { a: tf.tensor1d(a), b: tf.tensor1d(b) };
}
const flat = (g: Grads) => [...g.a.dataSync(), ...g.b.dataSync()];
const dot = (x: number[], y: number[]) => x.reduce((s, v, i) => s + v * y[i], 0);

test('combineGradients on conflicting gradients, each rule', () => {
  tf.tidy(() => {
    const s = grads([1, 0], [1]);
    const r = grads([-1, 1], [-1]);
    close(gradCosine(s, r), -0.8164966, 1e-6);

    const none = combineGradients(s, r, { lambdaSft: LS, lambdaRl: LR, rule: 'none' });
    assert.equal(none.conflict, true);
    close(none.cosine, -2 / Math.sqrt(6), 1e-6);
    closeAll(flat(none.grads), [0.5, 0.5, 0.5]);

    const drop = combineGradients(s, r, { lambdaSft: LS, lambdaRl: LR, rule: 'drop_sft_on_conflict' });
    assert.equal(drop.conflict, true);
    closeAll(flat(drop.grads), [-0.5, 0.5, -0.5]);

    const pc = combineGradients(s, r, { lambdaSft: LS, lambdaRl: LR, rule: 'pcgrad' });
    assert.equal(pc.conflict, true);
    // 1 * {a:[1/3, 2/3], b:[1/3]} + 0.5 * {a:[0,1], b:[0]}
    closeAll(flat(pc.grads), [1 / 3, 2 / 3 + 0.5, 1 / 3]);

    // Each projected gradient alone is orthogonal to the other ORIGINAL gradient.
    const sProj = flat(combineGradients(s, r, { lambdaSft: 1, lambdaRl: 0, rule: 'pcgrad' }).grads);
    const rProj = flat(combineGradients(s, r, { lambdaSft: 0, lambdaRl: 1, rule: 'pcgrad' }).grads);
    closeAll(sProj, [1 / 3, 2 / 3, 1 / 3]);
    closeAll(rProj, [0, 1, 0]);
    assert.ok(Math.abs(dot(sProj, flat(r))) < 1e-5, `gSft'·gRl = ${dot(sProj, flat(r))}`);
    assert.ok(Math.abs(dot(rProj, flat(s))) < 1e-5, `gRl'·gSft = ${dot(rProj, flat(s))}`);
  });
});

test('combineGradients on aligned gradients: every rule is the weighted sum', () => {
  tf.tidy(() => {
    const s = grads([1, 0], [1]);
    const r = grads([1, 1], [0]);
    for (const rule of ['none', 'drop_sft_on_conflict', 'pcgrad'] as const) {
      const c = combineGradients(s, r, { lambdaSft: LS, lambdaRl: LR, rule });
      assert.equal(c.conflict, false);
      close(c.cosine, 0.5, 1e-6);
      closeAll(flat(c.grads), [1.5, 0.5, 1]);
    }
  });
});

test('combineGradients: a key missing on one side counts as zeros; zero norm gives cosine 0', () => {
  tf.tidy(() => {
    const s: Grads = { a: tf.tensor1d([1, 2]) };
    const r: Grads = { a: tf.tensor1d([2, 0]), c: tf.tensor2d([[3]]) };
    // dot 2, |s|² 5, |r|² 13
    close(gradCosine(s, r), 2 / Math.sqrt(65), 1e-6);
    const c = combineGradients(s, r, { lambdaSft: 1, lambdaRl: 2, rule: 'none' });
    assert.deepEqual(Object.keys(c.grads).sort(), ['a', 'c']);
    closeAll(c.grads.a.dataSync(), [5, 2]);
    assert.deepEqual(c.grads.c.shape, [1, 1]);
    closeAll(c.grads.c.dataSync(), [6]);
    assert.equal(gradCosine({ a: tf.zeros([2]) }, { a: tf.tensor1d([1, 1]) }), 0);
    assert.throws(() => gradCosine({ a: tf.zeros([2]) }, { a: tf.zeros([3]) }), /shape/);
  });
});

test('no tensor leaks: outputs are new tensors, internals are disposed', () => {
  const s = grads([1, 0], [1]);
  const r = grads([-1, 1], [-1]);
  const before = tf.memory().numTensors;
  for (const rule of ['none', 'drop_sft_on_conflict', 'pcgrad'] as const) {
    const c = combineGradients(s, r, { lambdaSft: LS, lambdaRl: LR, rule });
    assert.equal(tf.memory().numTensors, before + 2, `${rule}: only the two outputs remain`);
    assert.ok(c.grads.a !== s.a && c.grads.a !== r.a);
    tf.dispose(c.grads);
  }
  gradCosine(s, r);
  assert.equal(tf.memory().numTensors, before);

  const { logp, oldLogp, adv } = surrogateInputs();
  const mask = tf.ones([2, 3]) as tf.Tensor2D;
  const refLogp = tf.zeros([2, 3]) as tf.Tensor2D;
  const mid = tf.memory().numTensors;
  const out = grpoLoss({ logp, oldLogp, refLogp, adv, mask, eps: 0.2, epsHigh: 0.2, beta: 0.1, lossType: 'grpo', maxCompletionLength: 3 });
  assert.equal(tf.memory().numTensors, mid + 3, 'grpoLoss leaves only loss, clipRatio and kl');
  tf.dispose(out);
  tf.dispose([s, r, logp, oldLogp, adv, mask, refLogp]);
  assert.equal(tf.memory().numTensors, before - 4); // s and r held 4 tensors
});
