/**
 * The safetensors format (8-byte little-endian header length, a JSON header, then raw little-endian
 * tensor bytes). gta writes and decodes F32 and I32 (what this project stores; readable by the Python
 * `safetensors` package) and writes BF16 (Hugging Face folders of random weights for the bench);
 * SafetensorsReader also reads the F16 and BF16 of Hugging Face weights.
 *
 * Big files go a tensor at a time (writeSafetensors, SafetensorsReader): a model with hundreds of
 * millions of parameters has weights and optimizer moments larger than one Node buffer may be
 * (readFileSync stops at 2 GiB), and holding a second copy of them in JS memory would double what
 * training needs.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { GtaError } from '../util/errors.js';

/** Bytes an element of each dtype gta reads or writes. */
const BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, I32: 4 };

export interface NamedArray {
  dtype: 'F32' | 'I32';
  shape: number[];
  data: Float32Array | Int32Array;
}

/** A tensor whose values are fetched when they are written or used (one in memory at a time); BF16 as its raw 16-bit words. */
export interface LazyArray {
  dtype: 'F32' | 'I32' | 'BF16';
  shape: number[];
  read(): Float32Array | Int32Array | Uint16Array;
}

/** The header bytes (length prefix included) for tensors of these shapes, in name order, and each one's byte count. */
function header(tensors: Map<string, { dtype: string; shape: number[] }>, metadata: Record<string, string>): { bytes: Buffer; names: string[]; sizes: number[] } {
  const h: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  const names = [...tensors.keys()].sort();
  const sizes = names.map((name) => {
    const t = tensors.get(name)!;
    const bytes = BYTES[t.dtype] * t.shape.reduce((a, b) => a * b, 1);
    h[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
    return bytes;
  });
  let json = JSON.stringify(h);
  // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const body = Buffer.from(json, 'utf8');
  const bytes = Buffer.alloc(8 + body.length);
  bytes.writeBigUInt64LE(BigInt(body.length), 0);
  body.copy(bytes, 8);
  return { bytes, names, sizes };
}

function bytesOf(data: Float32Array | Int32Array | Uint16Array, name: string, size: number): Buffer {
  if (data.byteLength !== size) throw new Error(`safetensors: tensor ${name} has ${data.byteLength} bytes, its shape needs ${size}`);
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

export function encodeSafetensors(tensors: Map<string, NamedArray>, metadata: Record<string, string> = {}): Buffer {
  const { bytes, names, sizes } = header(tensors, metadata);
  return Buffer.concat([bytes, ...names.map((name, i) => bytesOf(tensors.get(name)!.data, name, sizes[i]))]);
}

/**
 * The bytes encodeSafetensors would give, written to `file` a tensor at a time and fsynced; returns
 * their sha256 (hex), computed on the way.
 */
export function writeSafetensors(file: string, tensors: Map<string, LazyArray>, metadata: Record<string, string> = {}): string {
  const { bytes, names, sizes } = header(tensors, metadata);
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'w');
  try {
    const put = (b: Buffer) => {
      hash.update(b);
      for (let at = 0; at < b.length; ) at += fs.writeSync(fd, b, at, b.length - at);
    };
    put(bytes);
    names.forEach((name, i) => put(bytesOf(tensors.get(name)!.read(), name, sizes[i])));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/** sha256 (hex) of a file, read in pieces. */
export function sha256File(file: string): string {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(1 << 24);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

export function decodeSafetensors(buf: Buffer, file: string): { tensors: Map<string, NamedArray>; metadata: Record<string, string> } {
  const fail = (why: string) => new GtaError(`${file}: not a valid safetensors file (${why})`);
  if (buf.length < 8) throw fail('too short');
  const n = Number(buf.readBigUInt64LE(0));
  if (n <= 0 || 8 + n > buf.length) throw fail('bad header length');
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  } catch {
    throw fail('header is not JSON');
  }
  const base = 8 + n;
  const tensors = new Map<string, NamedArray>();
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = info as unknown as Record<string, string>;
      continue;
    }
    const [a, b] = info.data_offsets;
    if (!(b >= a && base + b <= buf.length)) throw fail(`tensor ${name} lies outside the file (truncated?)`);
    const count = info.shape.reduce((x, y) => x * y, 1);
    if ((b - a) !== count * 4) throw fail(`tensor ${name} has ${b - a} bytes for shape [${info.shape}]`);
    // Copy into an aligned buffer: the slice may start at any byte offset.
    const bytes = new Uint8Array(buf.subarray(base + a, base + b));
    if (info.dtype === 'F32') tensors.set(name, { dtype: 'F32', shape: info.shape, data: new Float32Array(bytes.buffer) });
    else if (info.dtype === 'I32') tensors.set(name, { dtype: 'I32', shape: info.shape, data: new Int32Array(bytes.buffer) });
    else throw fail(`unsupported dtype ${info.dtype} for ${name}`);
  }
  return { tensors, metadata };
}

/** One tensor's entry in a safetensors header. */
export interface TensorEntry {
  dtype: string;
  shape: number[];
  /** Byte range in the file (the header's offsets plus the header's own length). */
  begin: number;
  end: number;
}

/**
 * A safetensors file read a tensor at a time, each converted to float32 as it is read, so the whole
 * file is never in memory at once. F32, F16 and BF16 (what Hugging Face checkpoints ship); quantized
 * dtypes are refused. The file is opened for each read (no descriptor to close).
 */
export class SafetensorsReader {
  readonly entries = new Map<string, TensorEntry>();
  metadata: Record<string, string> = {};

  constructor(readonly file: string) {
    const fail = (why: string) => new GtaError(`${file}: not a valid safetensors file (${why})`);
    let size: number;
    try {
      size = fs.statSync(file).size;
    } catch {
      throw new GtaError(`${file}: missing`);
    }
    const head = this.read(0, 8);
    if (head.length < 8) throw fail('too short');
    const n = Number(head.readBigUInt64LE(0));
    if (n <= 0 || 8 + n > size) throw fail('bad header length');
    let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    try {
      header = JSON.parse(this.read(8, n).toString('utf8'));
    } catch {
      throw fail('header is not JSON');
    }
    for (const [name, info] of Object.entries(header)) {
      if (name === '__metadata__') {
        this.metadata = info as unknown as Record<string, string>;
        continue;
      }
      const [a, b] = info.data_offsets;
      if (!(b >= a && 8 + n + b <= size)) throw fail(`tensor ${name} lies outside the file (truncated?)`);
      const count = info.shape.reduce((x, y) => x * y, 1);
      const width = BYTES[info.dtype];
      if (width === undefined) throw new GtaError(`${file}: tensor ${name} has dtype ${info.dtype}; gta reads F32, F16 and BF16 weights (not quantized ones) and I32`);
      if (b - a !== count * width) throw fail(`tensor ${name} has ${b - a} bytes for shape [${info.shape}] in ${info.dtype}`);
      this.entries.set(name, { dtype: info.dtype, shape: info.shape, begin: 8 + n + a, end: 8 + n + b });
    }
  }

  /** Tensor `name` as float32 (exact: F16 and BF16 values are all representable). */
  float32(name: string): Float32Array {
    const e = this.entries.get(name);
    if (!e) throw new Error(`${this.file}: no tensor ${name}`);
    if (e.dtype === 'I32') throw new GtaError(`${this.file}: tensor ${name} is I32, not a float tensor`);
    const bytes = this.read(e.begin, e.end - e.begin);
    if (e.dtype === 'F32') return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4).slice();
    const half = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
    return e.dtype === 'BF16' ? bf16ToF32(half) : f16ToF32(half);
  }

  private read(at: number, length: number): Buffer {
    // an aligned copy of its own (a Buffer from the pool may start at any byte offset)
    const buf = Buffer.from(new ArrayBuffer(length));
    const fd = fs.openSync(this.file, 'r');
    let got = 0;
    try {
      while (got < length) {
        const n = fs.readSync(fd, buf, got, length - got, at + got);
        if (n === 0) break;
        got += n;
      }
    } finally {
      fs.closeSync(fd);
    }
    return got === length ? buf : buf.subarray(0, got);
  }
}

/** bfloat16 is the top half of a float32. */
function bf16ToF32(h: Uint16Array): Float32Array {
  const out = new Uint32Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = h[i] << 16;
  return new Float32Array(out.buffer);
}

/** IEEE half to float32: subnormals, infinities and NaN included. */
function f16ToF32(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) {
    const x = h[i];
    const sign = x & 0x8000 ? -1 : 1;
    const exp = (x >> 10) & 0x1f;
    const frac = x & 0x3ff;
    out[i] = exp === 0 ? sign * frac * 2 ** -24 : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return out;
}
