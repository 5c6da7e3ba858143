/**
 * Reductions, scans and softmax. tfjs reduces over a list of axes, where an empty list means no
 * reduction at all; in ATen an empty dim list means every axis, so that case is an explicit copy.
 */
import type { TorchBackend } from '../backend.js';
import type { Raw } from '../native.js';
import { axes, chain, id, type Info, type Kernel, type KernelTable } from './common.js';

/** A reduction over a dim list in one ATen call (sum, mean, amax, amin). */
function overAxes(op: string): Kernel {
  return (b, { x }, attrs) => {
    const ax = axes(attrs.axis ?? attrs.reductionIndices, x.shape);
    if (ax.length === 0) return b.run('aten::clone', [id(b, x)]);
    return b.run(op, [id(b, x), ax, Boolean(attrs.keepDims)]);
  };
}

/** A reduction whose ATen form takes one dim (prod, any, all): applied axis by axis, keeping dims, then reshaped. */
function axisByAxis(op: string, outDtype?: 'bool'): Kernel {
  return (b, { x }, attrs) => {
    const ax = axes(attrs.axis ?? attrs.reductionIndices, x.shape);
    return chain(b, (k) => {
      let acc: Raw = k(b.raw(outDtype ? 'aten::_to_copy' : 'aten::alias', outDtype ? [id(b, x), 11] : [id(b, x)]));
      for (const a of ax) acc = k(b.raw(op, [acc[0], a, true]));
      const shape = attrs.keepDims ? x.shape.map((d, i) => (ax.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !ax.includes(i));
      return b.raw('aten::reshape', [acc[0], shape]);
    });
  };
}

function argReduce(op: string): Kernel {
  return (b, { x }, { axis }) => b.run(op, [id(b, x), axes(axis, x.shape)[0], false]);
}

function softmaxLike(op: string): Kernel {
  return (b, { logits }, { dim }) => b.run(op, [id(b, logits), dim as number, false]);
}

/** Cumulative sum or product; `exclusive` shifts by one (the first is 0, or 1), `reverse` runs from the end. */
function scan(op: string, identity: number): Kernel {
  return (b, { x }, { axis, exclusive, reverse }) => {
    const dim = axes(axis, x.shape)[0];
    return chain(b, (k) => {
      let src = id(b, x);
      if (reverse) src = k(b.raw('aten::flip', [src, [dim]]))[0];
      if (exclusive) {
        const n = x.shape[dim];
        const pad = x.shape.map((d, i) => (i === dim ? 1 : d));
        const first = k(b.raw('aten::full', [pad, identity, null, null, b.device]));
        const cast = k(b.raw('aten::_to_copy', [first[0], x.dtype === 'float32' ? 6 : 3]));
        const head = k(b.raw('aten::slice.Tensor', [src, dim, 0, n - 1]));
        src = k(b.raw('aten::cat', [[cast[0], head[0]], dim]))[0];
      }
      let out = k(b.raw(op, [src, dim]));
      if (reverse) out = k(b.raw('aten::flip', [out[0], [dim]]));
      return out;
    });
  };
}

export const reduceKernels: KernelTable = {
  Sum: overAxes('aten::sum.dim_IntList'),
  Mean: overAxes('aten::mean.dim'),
  Max: overAxes('aten::amax'),
  Min: overAxes('aten::amin'),
  Prod: axisByAxis('aten::prod.dim_int'),
  Any: axisByAxis('aten::any.dim', 'bool'),
  All: axisByAxis('aten::all.dim', 'bool'),
  ArgMax: argReduce('aten::argmax'),
  ArgMin: argReduce('aten::argmin'),
  Softmax: softmaxLike('aten::_softmax'),
  Cumsum: scan('aten::cumsum', 0),
  Cumprod: scan('aten::cumprod', 1),
  TopK: (b: TorchBackend, { x }: Record<string, Info>, { k, sorted }) => {
    const [values, indices] = b.call('aten::topk', [id(b, x), k as number, -1, true, sorted !== false]) as Raw[];
    return [b.info(values), b.info(indices)];
  },
};
