/**
 * The workloads threads.ts times at each candidate thread setting, each run as its own process (the
 * OpenMP wait policy is fixed when libgomp loads): `node calibrate.js` prints the milliseconds each
 * took, `large small`. Both have the shape of work on the default model (width 128, 512 hidden, a
 * 4,096-row output head): `large` a forward and backward pass over 2,048 positions with the head at
 * 256 of them, as an LM or SFT step; `small` the same over 512 positions with the head at 64, then
 * eight decoding-like steps of 64 rows that read their logits back, as a rollout and an RL update.
 * Both end with an optimizer-like pass of small elementwise operators over each weight.
 */
import tf from '../../util/tfjs.cjs';
import { registerTorch } from './register.js';

registerTorch('cpu', Number(process.env.GTA_THREADS) || 1);
await tf.setBackend('torch');

const d = 128;
const w1 = tf.variable(tf.randomNormal([d, 4 * d], 0, 0.05, 'float32', 1));
const w2 = tf.variable(tf.randomNormal([4 * d, d], 0, 0.05, 'float32', 2));
const head = tf.variable(tf.randomNormal([4096, d], 0, 0.05, 'float32', 3));
const inputs = (rows: number, headRows: number) => ({
  x: tf.randomNormal([rows, d], 0, 1, 'float32', 4),
  targets: tf.tensor1d(Int32Array.from({ length: headRows }, (_, i) => (i * 37) % 4096), 'int32'),
  headRows,
});

function train({ x, targets, headRows }: ReturnType<typeof inputs>): void {
  const { value, grads } = tf.variableGrads(() => {
    const h = tf.add(x, tf.matMul(tf.relu(tf.matMul(x, w1)), w2));
    const logits = tf.matMul(tf.slice(h, [0, 0], [headRows, d]), head, false, true);
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

function decode(): void {
  let h = tf.randomNormal([64, d], 0, 1, 'float32', 5);
  for (let i = 0; i < 8; i++) {
    const next = tf.tidy(() => {
      const y = tf.add(h, tf.matMul(tf.relu(tf.matMul(h, w1)), w2));
      tf.matMul(y, head, false, true).dataSync();
      return y;
    });
    h.dispose();
    h = next;
  }
  h.dispose();
}

/** The median of 5 timed runs after 2 warm-up runs, in milliseconds. */
function time(f: () => void): number {
  const once = () => {
    const t0 = performance.now();
    f();
    return performance.now() - t0;
  };
  for (let i = 0; i < 2; i++) once();
  return Array.from({ length: 5 }, once).sort((a, b) => a - b)[2];
}

const large = inputs(2048, 256);
const small = inputs(512, 64);
const largeMs = time(() => (train(large), update()));
const smallMs = time(() => (train(small), decode(), update()));
process.stdout.write(`${largeMs} ${smallMs}\n`);
