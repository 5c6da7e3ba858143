/**
 * A TensorFlow.js backend whose tensors are libtorch (ATen) tensors: the model code stays on the tfjs
 * API and tfjs does the autodiff, while every kernel runs in ATen on the CPU or a CUDA device.
 *
 * Data ids are plain objects mapped to addon tensor ids, reference-counted as tfjs expects (a variable
 * shares its initial tensor's data id). Kernels (kernels/*.ts) call ATen operators by name through
 * `run`, which wraps the result as a tfjs TensorInfo.
 */
import tf from '../../util/tfjs.cjs';
import type { Arg, Raw, TorchNative } from './native.js';

type DataId = object;
type TensorInfo = tf.TensorInfo;

export const DTYPE_CODE: Record<string, number> = { float32: 0, int32: 1, bool: 2 };
export const DTYPES: tf.DataType[] = ['float32', 'int32', 'bool'];
/** The addon's code for float64 (3 is int64): both are narrowed before tfjs sees them. */
const NARROW_FLOAT = 4;
/** at::ScalarType values, as ATen schemas take them (the addon's own codes above are for transfers). */
export const SCALAR_TYPE: Record<string, number> = { float32: 6, int32: 3, bool: 11, int64: 4 };

interface Entry {
  id: number;
  refs: number;
}

export class TorchBackend extends tf.KernelBackend {
  private readonly entries = new WeakMap<DataId, Entry>();
  private count = 0;
  private readonly ops = new Map<string, number>();

  constructor(
    readonly native: TorchNative,
    /** 'cpu' or 'cuda:N'. */
    readonly device: string,
  ) {
    super();
  }

  // ---- storage ----

  override write(values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType): DataId {
    const dataId = {};
    this.entries.set(dataId, { id: this.constant(values, dtype, shape)[0], refs: 1 });
    this.count++;
    return dataId;
  }

  override move(dataId: DataId, values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType, refCount: number): void {
    this.entries.set(dataId, { id: this.constant(values, dtype, shape)[0], refs: refCount });
    this.count++;
  }

  override readSync(dataId: DataId): tf.backend_util.BackendValues {
    return this.native.toArray(this.idOf(dataId));
  }

  override async read(dataId: DataId): Promise<tf.backend_util.BackendValues> {
    return this.readSync(dataId);
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const e = this.entries.get(dataId);
    if (!e) return true;
    if (!force && --e.refs > 0) return false;
    this.native.free(e.id);
    this.entries.delete(dataId);
    this.count--;
    return true;
  }

  override refCount(dataId: DataId): number {
    return this.entries.get(dataId)?.refs ?? 0;
  }

  override incRef(dataId: DataId): void {
    const e = this.entries.get(dataId);
    if (e) e.refs++;
  }

  override numDataIds(): number {
    return this.count;
  }

  override memory(): { unreliable: boolean; reasons?: string[] } {
    return { unreliable: false };
  }

  override floatPrecision(): 32 {
    return 32;
  }

  override epsilon(): number {
    return 1e-7;
  }

  override timerAvailable(): boolean {
    return true;
  }

  override async time(f: () => void): Promise<tf.TimingInfo> {
    const t0 = performance.now();
    f();
    return { kernelMs: performance.now() - t0 } as tf.TimingInfo;
  }

  override dispose(): void {
    // Tensors still alive are freed with the addon at exit; tfjs disposes data ids one by one before this.
  }

  // ---- kernels ----

  /** Whether this backend holds the data of `dataId` (tfjs moves another backend's data over only when a kernel needs it). */
  holds(dataId: DataId): boolean {
    return this.entries.has(dataId);
  }

  /** The addon tensor id behind a TensorInfo. */
  idOf(dataId: DataId): number {
    const e = this.entries.get(dataId);
    if (!e) throw new Error('torch backend: a tensor that is not on this backend (or was disposed)');
    return e.id;
  }

  /** Calls ATen operator `name` ("aten::add.Tensor": schema name, then overload after the last dot). */
  call(name: string, args: Arg[]): unknown {
    let op = this.ops.get(name);
    if (op === undefined) {
      const dot = name.indexOf('.', name.indexOf('::'));
      op = dot < 0 ? this.native.op(name, '') : this.native.op(name.slice(0, dot), name.slice(dot + 1));
      this.ops.set(name, op);
    }
    return this.native.call(op, args);
  }

  /** `call` for an operator with one tensor result, kept as an addon tensor (free it with `free`). */
  raw(name: string, args: Arg[]): Raw {
    return this.call(name, args) as Raw;
  }

  /**
   * A Raw result handed to tfjs as a TensorInfo (tfjs then owns it). ATen's int64 (indices, integer
   * sums) and float64 results are narrowed to tfjs's int32 and float32 here.
   */
  info(raw: Raw): TensorInfo {
    if (raw[1] >= DTYPES.length) {
      const narrowed = this.raw('aten::_to_copy', [raw[0], SCALAR_TYPE[raw[1] === NARROW_FLOAT ? 'float32' : 'int32']]);
      this.native.free(raw[0]);
      raw = narrowed;
    }
    const dataId = {};
    this.entries.set(dataId, { id: raw[0], refs: 1 });
    this.count++;
    return { dataId, shape: raw.slice(2), dtype: DTYPES[raw[1]] };
  }

  /** `call` with one tensor result, returned to tfjs. */
  run(name: string, args: Arg[]): TensorInfo {
    return this.info(this.raw(name, args));
  }

  free(...raws: Raw[]): void {
    for (const r of raws) this.native.free(r[0]);
  }

  /** A tensor of `values` (zeros when null) on this backend's device, as a Raw (a copy of the values). */
  constant(values: tf.backend_util.BackendValues | ArrayLike<number> | null, dtype: tf.DataType, shape: number[]): Raw {
    const code = DTYPE_CODE[dtype];
    if (code === undefined) throw new Error(`the torch backend has no ${dtype} tensors`);
    const size = tf.util.sizeFromShape(shape);
    let typed: Float32Array | Int32Array | Uint8Array;
    if (values == null) typed = dtype === 'bool' ? new Uint8Array(size) : dtype === 'int32' ? new Int32Array(size) : new Float32Array(size);
    else if (dtype === 'float32') typed = values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
    else if (dtype === 'int32') typed = values instanceof Int32Array ? values : Int32Array.from(values as ArrayLike<number>);
    else typed = values instanceof Uint8Array ? values : Uint8Array.from(values as ArrayLike<number>, (v) => (v ? 1 : 0));
    return this.native.fromArray(typed, shape, code, this.device);
  }
}
