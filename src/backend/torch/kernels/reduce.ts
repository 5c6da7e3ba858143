/**
 * Reductions, scans and softmax. tfjs reduces over a list of axes, where an empty list means no
 * reduction at all; in ATen an empty dim list means every axis, so that case is an explicit copy.
 */
import type { TorchBackend } from '../backend.js';
import type { Raw } from '../native.js';
import { axes, castRaw, chain, id, type Info, type Kernel, type KernelTable } from './common.js';

/** A reduction over a dim list in one ATen call (sum, mean, amax, amin); `float` casts a non-float32 input first (tfjs's mean is float32). */
function overAxes(op: string, float = false): Kernel {
  return (b, { x }, attrs) => {
    const ax = axes(attrs.axis ?? attrs.reductionIndices, x.shape);
    if (float && x.dtype !== 'float32') {
      return chain(b, (k) => {
        const cast = k(castRaw(b, id(b, x), 'float32'));
        return ax.length === 0 ? cast : b.raw(op, [cast[0], ax, Boolean(attrs.keepDims)]);
      });
    }
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

/**
 * argmax / argmin as tfjs's cpu kernel: NaN never wins (ATen's would pick it; it is replaced by
 * -inf / +inf first), ties go to the lower index, bool inputs count as 0 / 1.
 */
function argReduce(op: string, nanAs: number): Kernel {
  return (b, { x }, { axis }) => {
    const dim = axes(axis, x.shape)[0];
    if (x.dtype === 'int32') return b.run(op, [id(b, x), dim, false]);
    return chain(b, (k) => {
      let src = id(b, x);
      if (x.dtype === 'bool') src = k(castRaw(b, src, 'int32'))[0];
      else src = k(b.raw('aten::masked_fill.Scalar', [src, k(b.raw('aten::isnan', [src]))[0], nanAs]))[0];
      return b.raw(op, [src, dim, false]);
    });
  };
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
        const cast = k(castRaw(b, first[0], x.dtype === 'float32' ? 'float32' : 'int32'));
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
  Mean: overAxes('aten::mean.dim', true),
  Max: overAxes('aten::amax'),
  Min: overAxes('aten::amin'),
  Prod: axisByAxis('aten::prod.dim_int'),
  Any: axisByAxis('aten::any.dim', 'bool'),
  All: axisByAxis('aten::all.dim', 'bool'),
  ArgMax: argReduce('aten::argmax', -Infinity),
  ArgMin: argReduce('aten::argmin', Infinity),
  Softmax: softmaxLike('aten::_softmax'),
  Cumsum: scan('aten::cumsum', 0),
  Cumprod: scan('aten::cumprod', 1),
  /**
   * The k largest along the last axis, ties in index order as tfjs's cpu kernel (ATen's topk orders
   * ties arbitrarily): a stable descending sort, then the first k. `sorted: false` gets them sorted too.
   */
  TopK: (b: TorchBackend, { x }: Record<string, Info>, { k }) => {
    const [values, indices] = b.call('aten::sort.stable', [id(b, x), true, -1, true]) as Raw[];
    const last = x.shape.length - 1;
    const n = x.shape[last];
    if ((k as number) === n) return [b.info(values), b.info(indices)];
    const out = [b.raw('aten::slice.Tensor', [values[0], last, 0, k as number]), b.raw('aten::slice.Tensor', [indices[0], last, 0, k as number])];
    b.free(values, indices);
    return out.map((r) => b.info(r));
  },
};
