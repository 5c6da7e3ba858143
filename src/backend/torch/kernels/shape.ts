/**
 * Kernels that move, select or assemble values without arithmetic, and the matrix product.
 * ATen returns views for reshape, transpose and slice (no copy); tfjs never mutates a tensor, so
 * sharing storage is safe.
 */
import * as tf from '@tensorflow/tfjs';
import type { TorchBackend } from '../backend.js';
import type { Raw } from '../native.js';
import { axes, chain, id, SCALAR_TYPE, type Info, type KernelTable } from './common.js';

function many(b: TorchBackend, raws: Raw[]): Info[] {
  return raws.map((r) => b.info(r));
}

export const shapeKernels: KernelTable = {
  Reshape: (b, { x }, { shape }) => b.run('aten::reshape', [id(b, x), tf.util.inferFromImplicitShape(shape as number[], tf.util.sizeFromShape(x.shape))]),
  ExpandDims: (b, { input }, { dim }) => {
    const shape = input.shape.slice();
    const d = (dim as number) < 0 ? input.shape.length + (dim as number) + 1 : (dim as number);
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
    return chain(b, (k) => {
      let cur: Raw = k(b.raw('aten::alias', [id(b, x)]));
      start.forEach((s, dim) => {
        if (s !== 0 || sz[dim] !== x.shape[dim]) cur = k(b.raw('aten::slice.Tensor', [cur[0], dim, s, s + sz[dim]]));
      });
      return cur;
    });
  },
  Concat: (b, inputs, { axis }) => {
    const xs = Object.values(inputs).filter((t) => tf.util.sizeFromShape(t.shape) > 0);
    const dim = axes(axis, Object.values(inputs)[0].shape)[0];
    if (xs.length === 0) return b.run('aten::clone', [id(b, Object.values(inputs)[0])]);
    return b.run('aten::cat', [xs.map((t) => id(b, t)), dim]);
  },
  Pack: (b, inputs, { axis }) => b.run('aten::stack', [Object.values(inputs).map((t) => id(b, t)), axis as number]),
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

  /** gather along `axis` with batchDims 0: index_select on the flattened indices, then the indices' shape. */
  GatherV2: (b, { x, indices }, { axis, batchDims }) => {
    if (batchDims) throw new Error('torch backend: gather with batchDims > 0 is not supported');
    const dim = axes(axis, x.shape)[0];
    return chain(b, (k) => {
      const flat = k(b.raw('aten::reshape', [id(b, indices), [-1]]));
      const picked = k(b.raw('aten::index_select', [id(b, x), dim, flat[0]]));
      return b.raw('aten::reshape', [picked[0], [...x.shape.slice(0, dim), ...indices.shape, ...x.shape.slice(dim + 1)]]);
    });
  },
  /** The gradient of gather: rows of x added into numSegments rows at segmentIds. */
  UnsortedSegmentSum: (b, { x, segmentIds }, { numSegments }) => {
    const inner = x.shape.slice(segmentIds.shape.length);
    return chain(b, (k) => {
      const zeros = k(b.raw('aten::zeros', [[numSegments as number, ...inner], SCALAR_TYPE[x.dtype], null, b.device]));
      const ids = k(b.raw('aten::reshape', [id(b, segmentIds), [-1]]));
      const rows = k(b.raw('aten::reshape', [id(b, x), [-1, ...inner]]));
      return b.raw('aten::index_add', [zeros[0], 0, ids[0], rows[0]]);
    });
  },
  /** one_hot: compare each index with 0..depth-1 (an index outside gives an all-off row, as in tfjs). */
  OneHot: (b, { indices }, { depth, onValue, offValue, dtype }) =>
    chain(b, (k) => {
      const range = k(b.raw('aten::arange.start_step', [0, depth as number, 1, 3, null, b.device]));
      const col = k(b.raw('aten::unsqueeze', [id(b, indices), -1]));
      const hit = k(b.raw('aten::eq.Tensor', [col[0], range[0]]));
      const on = k(b.raw('aten::full', [[], onValue as number, SCALAR_TYPE[dtype as string], null, b.device]));
      const off = k(b.raw('aten::full', [[], offValue as number, SCALAR_TYPE[dtype as string], null, b.device]));
      return b.raw('aten::where.self', [hit[0], on[0], off[0]]);
    }),
  Range: (b, _, { start, stop, step, dtype }) => b.run('aten::arange.start_step', [start as number, stop as number, step as number, SCALAR_TYPE[dtype as string], null, b.device]),

  BatchMatMul: (b, { a, b: y }, { transposeA, transposeB }) =>
    chain(b, (k) => {
      const l = transposeA ? k(b.raw('aten::transpose.int', [id(b, a), -2, -1]))[0] : id(b, a);
      const r = transposeB ? k(b.raw('aten::transpose.int', [id(b, y), -2, -1]))[0] : id(b, y);
      return b.raw('aten::matmul', [l, r]);
    }),
};
