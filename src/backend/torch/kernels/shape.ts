/**
 * Kernels that move, select or assemble values without arithmetic, and the matrix product.
 * ATen returns views for reshape, transpose and slice (no copy); tfjs never mutates a tensor, so
 * sharing storage is safe.
 */
import tf from '../../../util/tfjs.cjs';
import type { TorchBackend } from '../backend.js';
import type { Raw } from '../native.js';
import { axes, chain, id, product, SCALAR_TYPE, scalarType, share, type Info, type KernelTable } from './common.js';

function many(b: TorchBackend, raws: Raw[]): Info[] {
  return raws.map((r) => b.info(r));
}

export const shapeKernels: KernelTable = {
  Reshape: (b, { x }, { shape }) => b.run('aten::reshape', [id(b, x), tf.util.inferFromImplicitShape(shape as number[], tf.util.sizeFromShape(x.shape))]),
  ExpandDims: (b, { input }, { dim }) => {
    const shape = input.shape.slice();
    const rank = input.shape.length;
    tf.util.assert(-(rank + 1) <= (dim as number), () => `Axis must be in the interval [${-(rank + 1)}, ${rank}]`);
    const d = (dim as number) < 0 ? rank + (dim as number) + 1 : (dim as number);
    shape.splice(d, 0, 1);
    return b.run('aten::reshape', [id(b, input), shape]);
  },
  Squeeze: (b, { x }, { axis }) => b.run('aten::reshape', [id(b, x), tf.util.squeezeShape(x.shape, axis as number[]).newShape]),
  Transpose: (b, { x }, { perm }) => b.run('aten::permute', [id(b, x), perm as number[]]),
  Reverse: (b, { x }, { dims }) => b.run('aten::flip', [id(b, x), axes(dims, x.shape)]),
  BroadcastTo: (b, { x }, { shape }) =>
    chain(b, (k) => {
      const s = shape as number[];
      const lifted = k(b.raw('aten::reshape', [id(b, x), [...s.slice(0, s.length - x.shape.length).map(() => 1), ...x.shape]]));
      return b.raw('aten::expand', [lifted[0], s]);
    }),
  Tile: (b, { x }, { reps }) => b.run('aten::repeat', [id(b, x), reps as number[]]),

  Slice: (b, { x }, { begin, size }) => {
    const [start, sz] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin as number[], size as number[]);
    tf.slice_util.assertParamsValid(x as tf.Tensor, start, sz);
    return chain(b, (k) => {
      let cur: Raw = k(b.raw('aten::alias', [id(b, x)]));
      start.forEach((s, dim) => {
        if (s !== 0 || sz[dim] !== x.shape[dim]) cur = k(b.raw('aten::slice.Tensor', [cur[0], dim, s, s + sz[dim]]));
      });
      return cur;
    });
  },
  /** As tfjs's cpu kernel: shapes checked, empty inputs left out, an empty result of the concatenated shape. */
  Concat: (b, inputs, { axis }) => {
    const all = Object.values(inputs);
    const dim = axes(axis, all[0].shape)[0];
    tf.backend_util.assertParamsConsistent(all.map((t) => t.shape), dim);
    const outShape = tf.backend_util.computeOutShape(all.map((t) => t.shape), dim);
    if (tf.util.sizeFromShape(outShape) === 0) return b.run('aten::zeros', [outShape, scalarType(all[0].dtype), null, b.device]);
    const xs = all.filter((t) => tf.util.sizeFromShape(t.shape) > 0);
    if (xs.length === 1) return share(b, xs[0]);
    return b.run('aten::cat', [xs.map((t) => id(b, t)), dim]);
  },
  Pack: (b, inputs, { axis }) => {
    const xs = Object.values(inputs);
    for (const t of xs) {
      tf.util.assertShapesMatch(xs[0].shape, t.shape, 'All tensors passed to stack must have matching shapes');
      tf.util.assert(xs[0].dtype === t.dtype, () => 'All tensors passed to stack must have matching dtypes');
    }
    return b.run('aten::stack', [xs.map((t) => id(b, t)), axis as number]);
  },
  Unpack: (b, { value }, { axis }) => many(b, b.call('aten::unbind.int', [id(b, value), axis as number]) as Raw[]),
  SplitV: (b, { x }, { numOrSizeSplits, axis }) => {
    const dim = axes(axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits as number | number[], dim);
    return many(b, b.call('aten::split_with_sizes', [id(b, x), sizes, dim]) as Raw[]);
  },
  PadV2: (b, { x }, { paddings, constantValue }) => {
    // ATen lists the pads from the last dim backwards: [before_last, after_last, before_prev, ...]
    const pad = (paddings as [number, number][]).slice().reverse().flat();
    return b.run('aten::constant_pad_nd', [id(b, x), pad, constantValue as number]);
  },

  /**
   * gather along `axis`. batchDims 0: index_select on the flattened indices. batchDims > 0 (x and
   * indices share their first batchDims dims): as tfjs's cpu kernel, x as [batch, outer, dim, slice]
   * and indices as [batch, n], then an ATen gather along dim 2. An index outside [0, dim) throws
   * tfjs's message (found from the values only after ATen has refused them).
   */
  GatherV2: (b, { x, indices }, { axis, batchDims }) => {
    const dim = axes(axis, x.shape)[0];
    const info = tf.backend_util.segment_util.collectGatherOpShapeInfo(x as tf.Tensor, indices as tf.Tensor, dim, (batchDims as number) ?? 0);
    const run = (k: (r: Raw) => Raw): Raw => {
      if (info.batchSize === 1) {
        const flat = k(b.raw('aten::reshape', [id(b, indices), [-1]]));
        const picked = k(b.raw('aten::index_select', [id(b, x), dim, flat[0]]));
        return b.raw('aten::reshape', [picked[0], info.outputShape]);
      }
      const n = tf.util.sizeFromShape(indices.shape) / info.batchSize;
      const x4 = k(b.raw('aten::reshape', [id(b, x), [info.batchSize, info.outerSize, info.dimSize, info.sliceSize]]));
      const idx = k(b.raw('aten::reshape', [id(b, indices), [info.batchSize, 1, n, 1]]));
      const idx64 = k(b.raw('aten::_to_copy', [idx[0], SCALAR_TYPE.int64]));
      const wide = k(b.raw('aten::expand', [idx64[0], [info.batchSize, info.outerSize, n, info.sliceSize]]));
      const picked = k(b.raw('aten::gather', [x4[0], 2, wide[0]]));
      return b.raw('aten::reshape', [picked[0], info.outputShape]);
    };
    try {
      return chain(b, run);
    } catch (err) {
      const bad = Array.from(b.readSync(indices.dataId) as Int32Array).find((v) => v < 0 || v >= info.dimSize);
      if (bad !== undefined) throw new Error(`GatherV2: the index value ${bad} is not in [0, ${info.dimSize - 1}]`);
      throw err;
    }
  },
  /**
   * The gradient of gather: rows of x added into numSegments rows at segmentIds. An id outside
   * [0, numSegments) is ignored, as in tfjs: such rows go to one extra row, dropped at the end.
   */
  UnsortedSegmentSum: (b, { x, segmentIds }, { numSegments }) => {
    const inner = x.shape.slice(segmentIds.shape.length);
    const n = numSegments as number;
    return chain(b, (k) => {
      const rows = k(b.raw('aten::reshape', [id(b, x), [-1, ...inner]]));
      // in x's stored dtype (bfloat16 under bf16-true: an embedding's gradient at half the bytes)
      const zeros = k(b.raw('aten::new_zeros', [rows[0], [n + 1, ...inner]]));
      const ids = k(b.raw('aten::reshape', [id(b, segmentIds), [-1]]));
      const outside = k(b.raw('aten::logical_or', [k(b.raw('aten::lt.Scalar', [ids[0], 0]))[0], k(b.raw('aten::ge.Scalar', [ids[0], n]))[0]]));
      const safe = k(b.raw('aten::masked_fill.Scalar', [ids[0], outside[0], n]));
      // into the zeros (index_add_): an out-of-place index_add would hold a second [n + 1, ...] (an embedding's size) at once
      const summed = k(b.raw('aten::index_add_', [zeros[0], 0, safe[0], rows[0]]));
      return b.raw('aten::slice.Tensor', [summed[0], 0, 0, n]);
    });
  },
  /** one_hot: compare each index with 0..depth-1 (an index outside gives an all-off row, as in tfjs). */
  OneHot: (b, { indices }, { depth, onValue, offValue, dtype }) =>
    chain(b, (k) => {
      const range = k(b.raw('aten::arange.start_step', [0, depth as number, 1, 3, null, b.device]));
      const col = k(b.raw('aten::unsqueeze', [id(b, indices), -1]));
      const hit = k(b.raw('aten::eq.Tensor', [col[0], range[0]]));
      const on = k(b.raw('aten::full', [[], onValue as number, scalarType(dtype), null, b.device]));
      const off = k(b.raw('aten::full', [[], offValue as number, scalarType(dtype), null, b.device]));
      return b.raw('aten::where.self', [hit[0], on[0], off[0]]);
    }),
  /**
   * tfjs's range (its cpu rangeImpl): empty when the step points away from stop, a default step of 1
   * counts down when stop < start, and the values accumulate start + step + step ... in the dtype.
   */
  Range: (b, _, { start, stop, step, dtype }) => {
    const [s0, s1] = [start as number, stop as number];
    let st = step as number;
    const dt = dtype as 'float32' | 'int32';
    scalarType(dt);
    if (s0 === s1 || (s0 < s1 && st < 0) || (s1 < s0 && st > 1)) return b.info(b.constant([], dt, [0]));
    const values = dt === 'int32' ? new Int32Array(Math.abs(Math.ceil((s1 - s0) / st))) : new Float32Array(Math.abs(Math.ceil((s1 - s0) / st)));
    if (s1 < s0 && st === 1) st = -1;
    values[0] = s0;
    for (let i = 1; i < values.length; i++) values[i] = values[i - 1] + st;
    return b.info(b.constant(values, dt, [values.length]));
  },

  /** torch.matmul, with tfjs's checks first (matmul would also take a vector). */
  BatchMatMul: (b, { a, b: y }, { transposeA, transposeB }) => {
    const [ra, rb] = [a.shape.length, y.shape.length];
    const innerA = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const innerB = transposeB ? y.shape[rb - 1] : y.shape[rb - 2];
    tf.backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), y.shape.slice(0, -2));
    tf.util.assert(
      ra >= 2 && rb >= 2 && innerA === innerB,
      () => `Error in matMul: inner shapes (${innerA}) and (${innerB}) of Tensors with shapes ${a.shape} and ${y.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
    );
    return chain(b, (k) => {
      const l = transposeA ? k(b.raw('aten::transpose.int', [id(b, a), -2, -1]))[0] : id(b, a);
      const r = transposeB ? k(b.raw('aten::transpose.int', [id(b, y), -2, -1]))[0] : id(b, y);
      // on the CPU as big work when it is one (gta::Product: more threads inside rollouts and RL updates)
      return product(b, l, r);
    });
  },
};
