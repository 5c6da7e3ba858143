/**
 * Element-wise kernels. tfjs gives binary kernels inputs of one dtype (its ops upcast first) and
 * expects arithmetic results in that dtype, comparisons and logic in bool; ATen would promote
 * int32 / int32 division to float, so those results are cast back.
 */
import tf from '../../../util/tfjs.cjs';
import type { TorchBackend } from '../backend.js';
import { castRaw, chain, id, scalarType, share, type Info, type KernelTable } from './common.js';

const UNARY: Record<string, string> = {
  Abs: 'aten::abs',
  Acos: 'aten::acos',
  Acosh: 'aten::acosh',
  Asin: 'aten::asin',
  Asinh: 'aten::asinh',
  Atan: 'aten::atan',
  Atanh: 'aten::atanh',
  Ceil: 'aten::ceil',
  Cos: 'aten::cos',
  Cosh: 'aten::cosh',
  Erf: 'aten::erf',
  Exp: 'aten::exp',
  Expm1: 'aten::expm1',
  Floor: 'aten::floor',
  IsFinite: 'aten::isfinite',
  IsInf: 'aten::isinf',
  IsNan: 'aten::isnan',
  Log: 'aten::log',
  Log1p: 'aten::log1p',
  LogicalNot: 'aten::logical_not',
  Neg: 'aten::neg',
  Reciprocal: 'aten::reciprocal',
  Relu: 'aten::relu',
  Round: 'aten::round',
  Rsqrt: 'aten::rsqrt',
  Selu: 'aten::selu',
  Sigmoid: 'aten::sigmoid',
  Sign: 'aten::sign',
  Sin: 'aten::sin',
  Sinh: 'aten::sinh',
  Sqrt: 'aten::sqrt',
  Square: 'aten::square',
  Tan: 'aten::tan',
  Tanh: 'aten::tanh',
};

/** Binary ops whose result has the inputs' dtype. */
const ARITHMETIC: Record<string, string> = {
  Add: 'aten::add.Tensor',
  Sub: 'aten::sub.Tensor',
  Multiply: 'aten::mul.Tensor',
  RealDiv: 'aten::div.Tensor',
  Maximum: 'aten::maximum',
  Minimum: 'aten::minimum',
  Pow: 'aten::pow.Tensor_Tensor',
  Mod: 'aten::remainder.Tensor', // floor modulo, the sign of the divisor, as tfjs
  Atan2: 'aten::atan2',
};

/** Binary ops with a bool result. */
const LOGICAL: Record<string, string> = {
  Equal: 'aten::eq.Tensor',
  NotEqual: 'aten::ne.Tensor',
  Greater: 'aten::gt.Tensor',
  GreaterEqual: 'aten::ge.Tensor',
  Less: 'aten::lt.Tensor',
  LessEqual: 'aten::le.Tensor',
  LogicalAnd: 'aten::logical_and',
  LogicalOr: 'aten::logical_or',
  LogicalXor: 'aten::logical_xor',
};

/** The result cast to `dtype` when ATen produced another. */
function asDtype(b: TorchBackend, out: Info, dtype: tf.DataType): Info {
  if (out.dtype === dtype) return out;
  const cast = b.info(castRaw(b, id(b, out), dtype));
  b.disposeData(out.dataId, true);
  return cast;
}

function unary(op: string) {
  return (b: TorchBackend, { x }: Record<string, Info>) => b.run(op, [id(b, x)]);
}

function arithmetic(op: string) {
  return (b: TorchBackend, { a, b: y }: Record<string, Info>) => asDtype(b, b.run(op, [id(b, a), id(b, y)]), a.dtype);
}

function logical(op: string) {
  return (b: TorchBackend, { a, b: y }: Record<string, Info>) => b.run(op, [id(b, a), id(b, y)]);
}

export const elementwiseKernels: KernelTable = {
  ...Object.fromEntries(Object.entries(UNARY).map(([k, op]) => [k, unary(op)])),
  ...Object.fromEntries(Object.entries(ARITHMETIC).map(([k, op]) => [k, arithmetic(op)])),
  ...Object.fromEntries(Object.entries(LOGICAL).map(([k, op]) => [k, logical(op)])),

  FloorDiv: (b, { a, b: y }) => asDtype(b, b.run('aten::div.Tensor_mode', [id(b, a), id(b, y), 'floor']), 'int32'),
  SquaredDifference: (b, { a, b: y }) => chain(b, (k) => b.raw('aten::square', [k(b.raw('aten::sub.Tensor', [id(b, a), id(b, y)]))[0]])),
  Relu6: (b, { x }) => b.run('aten::hardtanh', [id(b, x), 0, 6]),
  /** float32 whatever the input's dtype, as tfjs's cpu kernel (ATen has no integer leaky_relu). */
  LeakyRelu: (b, { x }, { alpha }) =>
    x.dtype === 'float32'
      ? b.run('aten::leaky_relu', [id(b, x), alpha as number])
      : chain(b, (k) => b.raw('aten::leaky_relu', [k(castRaw(b, id(b, x), 'float32'))[0], alpha as number])),
  Elu: (b, { x }) => b.run('aten::elu', [id(b, x)]),
  /** The gradient of Elu from its output y: dy where y > 0, dy * (y + 1) elsewhere. */
  EluGrad: (b, { dy, y }) => b.run('aten::elu_backward', [id(b, dy), 1, 1, 1, true, id(b, y)]),
  Prelu: (b, { x, alpha }) =>
    chain(b, (k) => {
      const neg = k(b.raw('aten::lt.Scalar', [id(b, x), 0]));
      const scaled = k(b.raw('aten::mul.Tensor', [id(b, x), id(b, alpha)]));
      return b.raw('aten::where.self', [neg[0], scaled[0], id(b, x)]);
    }),
  Softplus: (b, { x }) => b.run('aten::softplus', [id(b, x)]),
  ClipByValue: (b, { x }, { clipValueMin, clipValueMax }) => b.run('aten::clamp', [id(b, x), clipValueMin as number, clipValueMax as number]),

  /** step(x) = 1 where x > 0, alpha elsewhere, NaN where x is NaN (the gradient of relu uses it). */
  Step: (b, { x }, { alpha }) =>
    chain(b, (k) => {
      const pos = k(b.raw('aten::gt.Scalar', [id(b, x), 0]));
      const one = k(b.raw('aten::ones_like', [id(b, x)]));
      const other = k(b.raw('aten::full_like', [id(b, x), alpha as number]));
      const stepped = k(b.raw('aten::where.self', [pos[0], one[0], other[0]]));
      const nan = k(b.raw('aten::isnan', [id(b, x)]));
      return b.raw('aten::where.self', [nan[0], id(b, x), stepped[0]]);
    }),

  /** tfjs's condition may be rank 1 against higher-rank values: it then picks whole rows. */
  Select: (b, { condition, t, e }) =>
    chain(b, (k) => {
      let c = id(b, condition);
      if (condition.shape.length === 1 && t.shape.length > 1) {
        c = k(b.raw('aten::reshape', [c, [condition.shape[0], ...t.shape.slice(1).map(() => 1)]]))[0];
      }
      return b.raw('aten::where.self', [c, id(b, t), id(b, e)]);
    }),

  /** To the same dtype: the input's data id, shared (as Identity). */
  Cast: (b, { x }, { dtype }) => {
    if (dtype === x.dtype) return share(b, x);
    scalarType(dtype);
    return b.info(castRaw(b, id(b, x), dtype as tf.DataType));
  },
  /**
   * The input's data id, shared with one more reference (as tfjs's cpu backend): tfjs's customGrad
   * saves inputs through clone (Identity) and counts a new data id there as a leak.
   */
  Identity: (b, { x }) => share(b, x),
  ZerosLike: (b, { x }) => b.run('aten::zeros_like', [id(b, x)]),
  OnesLike: (b, { x }) => b.run('aten::ones_like', [id(b, x)]),
  Fill: (b, _, { shape, value, dtype }) => b.run('aten::full', [shape as number[], value as number, scalarType(dtype), null, b.device]),

  AddN: (b, { ...inputs }) =>
    chain(b, (k) => {
      const xs = Object.values(inputs);
      let acc = k(b.raw('aten::alias', [id(b, xs[0])]));
      for (const x of xs.slice(1)) acc = k(b.raw('aten::add.Tensor', [acc[0], id(b, x)]));
      return acc;
    }),
};
