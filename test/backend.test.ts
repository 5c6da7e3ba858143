/**
 * Backends: initBackend's choices and failures, and that every gradient the model needs is right on
 * wasm. The reference is the cpu backend with tfjs's own gradients; the wasm side runs our
 * replacements (matMulFast and its BatchMatMul gradient, gatherRows' JS scatter-add).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import tf from '../src/util/tfjs.cjs';
import { initBackend } from '../src/backend/select.js';
import { installFastGradients } from '../src/backend/fast_grads.js';
import { matMulFast } from '../src/backend/matmul.js';
import { gatherRows } from '../src/backend/gather_rows.js';
import { GtaError } from '../src/util/errors.js';

// Captured before anything installs ours, to compute the reference gradients with.
const TFJS_MATMUL_GRAD = tf.getGradient('BatchMatMul');
installFastGradients();
const OUR_MATMUL_GRAD = tf.getGradient('BatchMatMul');

/** Deterministic values in [lo, hi). */
function values(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed * 7919 + 17;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = lo + ((s / 2147483648) * (hi - lo));
  }
  return out;
}

interface Input {
  shape: number[];
  lo?: number;
  hi?: number;
}
type Loss = (...xs: tf.Tensor[]) => tf.Tensor;

/**
 * Gradients of sum(f(xs) * w) w.r.t. every input, on `backend`. The random weight w makes dy differ
 * from element to element, so a transposed or misplaced gradient cannot pass by symmetry.
 */
async function gradsOn(backend: string, f: Loss, inputs: Input[], tfjsMatMulGrad: boolean): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  tf.registerGradient(tfjsMatMulGrad ? TFJS_MATMUL_GRAD : OUR_MATMUL_GRAD);
  try {
    return tf.tidy(() => {
      const xs = inputs.map((x, i) => tf.tensor(values(tf.util.sizeFromShape(x.shape), i + 1, x.lo, x.hi), x.shape));
      const loss = (...args: tf.Tensor[]) => {
        const y = f(...args);
        return tf.sum(tf.mul(y, tf.tensor(values(y.size, 99), y.shape)));
      };
      return tf.grads(loss)(xs).map((g) => g.dataSync() as Float32Array);
    });
  } finally {
    tf.registerGradient(OUR_MATMUL_GRAD);
  }
}

function assertClose(actual: Float32Array, expected: Float32Array, what: string, tol = 1e-4): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected[i]) / Math.max(1, Math.abs(expected[i]));
    assert.ok(err <= tol, `${what}: element ${i} is ${actual[i]}, cpu says ${expected[i]}`);
  }
}

/** wasm (our gradients) against cpu (tfjs's gradients, or `reference` where tfjs has none). */
async function compare(what: string, f: Loss, inputs: Input[], reference: Loss = f): Promise<void> {
  const expected = await gradsOn('cpu', reference, inputs, true);
  const actual = await gradsOn('wasm', f, inputs, false);
  assert.equal(actual.length, expected.length);
  actual.forEach((g, i) => assertClose(g, expected[i], `${what}, input ${i}`));
}

test('initBackend: cpu and wasm start and describe their device', async () => {
  assert.deepEqual(await initBackend('cpu'), { name: 'cpu', device: 'js cpu', tried: [] });
  const wasm = await initBackend('wasm');
  assert.equal(wasm.name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.match(wasm.device, /^wasm (simd|no simd), \d+ threads?$/);
});

test('initBackend: an explicit backend that cannot start is a GtaError naming it', async () => {
  let nodeInstalled = true;
  try {
    createRequire(import.meta.url).resolve('@tensorflow/tfjs-node');
  } catch {
    nodeInstalled = false;
  }
  if (nodeInstalled) {
    assert.equal((await initBackend('tensorflow')).name, 'tensorflow');
  } else {
    await assert.rejects(initBackend('tensorflow'), (err: unknown) => {
      assert.ok(err instanceof GtaError);
      assert.match(err.message, /^backend 'tensorflow' is not available: .*not installed/);
      assert.ok(!err.message.includes('\n'));
      return true;
    });
  }
  // No GPU here: webgpu must fail fast with a reason (with a GPU it may start instead).
  const t0 = Date.now();
  try {
    assert.equal((await initBackend('webgpu')).name, 'webgpu');
  } catch (err) {
    assert.ok(err instanceof GtaError);
    assert.match(err.message, /^backend 'webgpu' is not available: \S/);
  }
  assert.ok(Date.now() - t0 < 15000);
});

test('initBackend: auto takes the first backend that works and says why the faster ones did not', async () => {
  const order = ['torch', 'tensorflow', 'webgpu', 'wasm', 'cpu'];
  const info = await initBackend('auto');
  assert.ok(order.includes(info.name));
  assert.equal(tf.getBackend(), info.name);
  assert.deepEqual(info.tried.map((t) => t.name), order.slice(0, order.indexOf(info.name)));
  for (const t of info.tried) assert.ok(t.error.length > 0 && !t.error.includes('\n'), t.error);
});

test('matMulFast: gradients of all transpose combinations, 2-D, batched and broadcast', async () => {
  const cases: { a: number[]; b: number[]; full?: [number[], number[]] }[] = [
    { a: [3, 4], b: [4, 5] },
    { a: [2, 3, 4, 5], b: [2, 3, 5, 6] },
    // Broadcast batch dims: tfjs's own gradient fails on these, so the reference broadcasts explicitly.
    { a: [2, 3, 4, 5], b: [5, 6], full: [[2, 3, 4, 5], [2, 3, 5, 6]] },
    { a: [2, 3, 4, 5], b: [1, 3, 5, 6], full: [[2, 3, 4, 5], [2, 3, 5, 6]] },
    { a: [2, 3, 4, 5], b: [3, 5, 6], full: [[2, 3, 4, 5], [2, 3, 5, 6]] },
    { a: [3, 4, 5], b: [2, 3, 5, 6], full: [[2, 3, 4, 5], [2, 3, 5, 6]] },
  ];
  const swap = (s: number[]) => [...s.slice(0, -2), s[s.length - 1], s[s.length - 2]];
  for (const c of cases) {
    for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]]) {
      const a = ta ? swap(c.a) : c.a;
      const b = tb ? swap(c.b) : c.b;
      const f: Loss = (x, y) => matMulFast(x, y, ta, tb);
      const full = c.full;
      const reference: Loss = full
        ? (x, y) => tf.matMul(tf.broadcastTo(x, ta ? swap(full[0]) : full[0]), tf.broadcastTo(y, tb ? swap(full[1]) : full[1]), ta, tb)
        : (x, y) => tf.matMul(x, y, ta, tb);
      await compare(`matMulFast ${a} x ${b} ta=${ta} tb=${tb}`, f, [{ shape: a }, { shape: b }], reference);
    }
  }
});

test('on wasm, unbatched products and their gradients reach the kernel without transpose flags', async () => {
  await tf.setBackend('wasm');
  // The engine looks the kernel up at every call, so wrapping the registered config's function spies on it.
  const kernel = tf.getKernel('BatchMatMul', 'wasm') as unknown as { kernelFunc: (args: { attrs?: tf.NamedAttrMap }) => unknown };
  const original = kernel.kernelFunc;
  const flags: boolean[] = [];
  kernel.kernelFunc = (args) => {
    flags.push(Boolean(args.attrs?.transposeA) || Boolean(args.attrs?.transposeB));
    return original(args);
  };
  try {
    tf.tidy(() => {
      const a = tf.tensor(values(12, 1), [4, 3]);
      const b = tf.tensor(values(15, 2), [5, 3]);
      const g = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(matMulFast(matMulFast(x, x, true), y, false, true))));
      g([a, b]);
    });
  } finally {
    kernel.kernelFunc = original;
  }
  assert.ok(flags.length >= 6, `${flags.length} products`);
  assert.deepEqual(flags.filter((f) => f), []);
});

test('gatherRows: embedding gradient with repeated ids, on wasm without UnsortedSegmentSum', async () => {
  assert.equal(tf.getKernel('UnsortedSegmentSum', 'wasm'), undefined, 'wasm grew the kernel: the JS fallback can go');
  const ids = [1, 2, 1, 6, 1, 0];
  // The ids tensor is made inside the differentiated function, so it is disposed before the backward
  // pass runs; gatherRows must not need it there.
  const f: Loss = (table) => gatherRows(table as tf.Tensor2D, tf.tensor2d(ids, [2, 3], 'int32'));
  await compare('gatherRows', f, [{ shape: [7, 4] }]);

  await tf.setBackend('wasm');
  const table = tf.tensor2d(values(28, 5), [7, 4]);
  const before = tf.memory().numTensors;
  const grad = tf.grad((t: tf.Tensor) => tf.sum(gatherRows(t as tf.Tensor2D, tf.tensor1d([3, 3], 'int32'))))(table);
  assert.deepEqual(grad.shape, [7, 4]);
  assert.deepEqual(Array.from(grad.dataSync()), [...Array(28).keys()].map((i) => (i >= 12 && i < 16 ? 2 : 0)));
  grad.dispose();
  assert.equal(tf.memory().numTensors, before, 'leaked tensors');
  table.dispose();
});

test('every op the model uses has a gradient on wasm that matches cpu', async () => {
  const layerNorm: Loss = (x, g, b) => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), g), b);
  };
  const layerNormByMean: Loss = (x) => {
    const mu = tf.mean(x, -1, true);
    const c = tf.sub(x, mu);
    return tf.div(c, tf.sqrt(tf.add(tf.mean(tf.square(c), -1, true), 1e-5)));
  };
  // GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  const gelu: Loss = (x) =>
    tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.mul(tf.square(x), x)))))));
  const crossEntropy: Loss = (logits) => {
    const onehot = tf.oneHot(tf.tensor1d([2, 0, 4], 'int32'), 5);
    return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits, -1), onehot), -1)));
  };
  const pos = { lo: 0.5, hi: 2 };
  const ops: [string, Loss, Input[]][] = [
    ['matMul', (a, b) => tf.matMul(a, b), [{ shape: [3, 4] }, { shape: [4, 2] }]],
    ['add (broadcast bias)', (a, b) => tf.add(a, b), [{ shape: [2, 3, 4] }, { shape: [4] }]],
    ['sub', (a, b) => tf.sub(a, b), [{ shape: [3, 4] }, { shape: [3, 1] }]],
    ['mul', (a, b) => tf.mul(a, b), [{ shape: [3, 4] }, { shape: [3, 4] }]],
    ['div', (a, b) => tf.div(a, b), [{ shape: [3, 4] }, { shape: [3, 4], ...pos }]],
    ['reshape', (a) => tf.reshape(a, [4, 3]), [{ shape: [2, 6] }]],
    ['transpose 4-D', (a) => tf.transpose(a, [0, 2, 1, 3]), [{ shape: [2, 3, 4, 2] }]],
    ['transpose 5-D (qkv split)', (a) => tf.transpose(a, [2, 0, 3, 1, 4]), [{ shape: [2, 3, 3, 2, 2] }]],
    ['unstack', (a) => tf.add(tf.mul(tf.unstack(a)[0], 2), tf.unstack(a)[2]), [{ shape: [3, 2, 4] }]],
    ['softmax', (a) => tf.softmax(a, -1), [{ shape: [2, 3, 5] }]],
    ['logSoftmax', (a) => tf.logSoftmax(a, -1), [{ shape: [3, 5] }]],
    ['sum', (a) => tf.sum(a, -1, true), [{ shape: [3, 4] }]],
    ['mean', (a) => tf.mean(a, [0, 1]), [{ shape: [3, 4, 2] }]],
    ['square', (a) => tf.square(a), [{ shape: [3, 4] }]],
    ['rsqrt', (a) => tf.rsqrt(a), [{ shape: [3, 4], ...pos }]],
    ['sqrt', (a) => tf.sqrt(a), [{ shape: [3, 4], ...pos }]],
    ['tanh', (a) => tf.tanh(a), [{ shape: [3, 4] }]],
    ['exp', (a) => tf.exp(a), [{ shape: [3, 4] }]],
    ['log', (a) => tf.log(a), [{ shape: [3, 4], ...pos }]],
    ['neg', (a) => tf.neg(a), [{ shape: [3, 4] }]],
    ['relu', (a) => tf.relu(a), [{ shape: [3, 4] }]],
    ['maximum', (a, b) => tf.maximum(a, b), [{ shape: [3, 4] }, { shape: [3, 4] }]],
    ['where', (a, b) => tf.where(tf.greater(tf.tensor(values(12, 7), [3, 4]), 0), a, b), [{ shape: [3, 4] }, { shape: [3, 4] }]],
    ['concat', (a, b) => tf.concat([a, b], 2), [{ shape: [2, 3, 4] }, { shape: [2, 3, 2] }]],
    ['slice', (a) => tf.slice(a, [0, 1, 1], [2, 2, 3]), [{ shape: [2, 3, 4] }]],
    ['addN', (a, b) => tf.addN([a, b, a]), [{ shape: [3, 4] }, { shape: [3, 4] }]],
    ['dropout (seeded)', (a) => tf.dropout(a, 0.3, undefined, 42), [{ shape: [4, 5] }]],
    ['gatherRows', (t) => gatherRows(t as tf.Tensor2D, tf.tensor1d([0, 3, 3, 1], 'int32')), [{ shape: [5, 3] }]],
    ['layer norm (moments)', layerNorm, [{ shape: [2, 3, 6] }, { shape: [6] }, { shape: [6] }]],
    ['layer norm (mean, sqrt, div)', layerNormByMean, [{ shape: [3, 6] }]],
    ['GELU (tanh approximation)', gelu, [{ shape: [3, 4], lo: -3, hi: 3 }]],
    ['cross-entropy (logSoftmax, oneHot)', crossEntropy, [{ shape: [3, 5] }]],
    ['attention (scores, mask, softmax, context)', (q, k, v) => matMulFast(tf.softmax(tf.add(tf.mul(matMulFast(q, k, false, true), 0.5), tf.tensor([0, -1e9, 0, 0], [1, 1, 1, 4])), -1), v), [{ shape: [2, 2, 3, 4] }, { shape: [2, 2, 4, 4] }, { shape: [2, 2, 4, 4] }]],
  ];
  for (const [name, f, inputs] of ops) await compare(name, f, inputs);
});
