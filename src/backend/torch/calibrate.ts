/**
 * The workload threads.ts times at each candidate thread setting, run as its own process (the
 * OpenMP wait policy is fixed when libgomp loads): prints the milliseconds it took. It has the shape
 * of a training step on the default model: a forward and backward pass through small matrix products
 * (width 128, 512 hidden, a 4,096-row output head), then an optimizer-like pass of small elementwise
 * operators over each weight. Decoding is left out: it runs on one thread whatever the count
 * (singleThreaded in src/backend/select.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { registerTorch } from './register.js';

registerTorch('cpu', Number(process.env.GTA_THREADS) || 1);
await tf.setBackend('torch');

const d = 128;
const w1 = tf.variable(tf.randomNormal([d, 4 * d], 0, 0.05, 'float32', 1));
const w2 = tf.variable(tf.randomNormal([4 * d, d], 0, 0.05, 'float32', 2));
const head = tf.variable(tf.randomNormal([4096, d], 0, 0.05, 'float32', 3));
const x = tf.randomNormal([2048, d], 0, 1, 'float32', 4);
const targets = tf.tensor1d(Int32Array.from({ length: 256 }, (_, i) => (i * 37) % 4096), 'int32');

function train(): void {
  const { value, grads } = tf.variableGrads(() => {
    const h = tf.add(x, tf.matMul(tf.relu(tf.matMul(x, w1)), w2));
    const logits = tf.matMul(tf.slice(h, [0, 0], [256, d]), head, false, true);
    return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(targets, 4096)), -1))) as tf.Scalar;
  });
  value.dataSync();
  tf.dispose([value, ...Object.values(grads)]);
}

/** A handful of elementwise operators per weight, as AdamW's composite does. */
function update(): void {
  for (const w of [w1, w2, head]) {
    tf.tidy(() => {
      const m = tf.mul(w, 0.9);
      const v = tf.add(tf.mul(tf.square(w), 0.001), 1e-8);
      w.assign(tf.sub(w, tf.mul(tf.div(m, tf.sqrt(v)), 1e-9)));
    });
  }
}

const once = () => {
  const t0 = performance.now();
  train();
  update();
  return performance.now() - t0;
};
for (let i = 0; i < 2; i++) once();
const times = Array.from({ length: 7 }, once).sort((a, b) => a - b);
process.stdout.write(`${times[3]}\n`);
