/**
 * TensorFlow.js for every module here: `import tf from '<relative path>/util/tfjs.cjs'`, then `tf.tensor(...)` and
 * `tf.Tensor` as a type, as `import * as tf from '@tensorflow/tfjs'` would give.
 *
 * Why not that import: @tensorflow/tfjs is CommonJS, and Node's ESM loader scans a CommonJS module's
 * source for its export names, following its re-exports into tfjs-core, -layers, -converter and -data
 * (5 MB of bundles): ~0.65 s of every process start (import 0.97 s against require 0.33 s on the 2-vCPU
 * EPYC), paid again by each `gta` a sweep or a test spawns. A plain require here skips the scan; Node
 * sees `module.exports = tf` (not `= require(...)`) and does not follow it, so importers get one default
 * export, the same tfjs module object.
 */
import tf = require('@tensorflow/tfjs');
export = tf;
