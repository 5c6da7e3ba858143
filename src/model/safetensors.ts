/**
 * The safetensors format (8-byte little-endian header length, a JSON header, then raw little-endian
 * tensor bytes), F32 and I32 only: what this project stores. Readable by the Python `safetensors` package.
 */
import { GtaError } from '../util/errors.js';

export interface NamedArray {
  dtype: 'F32' | 'I32';
  shape: number[];
  data: Float32Array | Int32Array;
}

export function encodeSafetensors(tensors: Map<string, NamedArray>, metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  const names = [...tensors.keys()].sort();
  for (const name of names) {
    const t = tensors.get(name)!;
    const bytes = t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let pos = 8 + headerBytes.length;
  for (const name of names) {
    const t = tensors.get(name)!;
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, pos);
    pos += t.data.byteLength;
  }
  return out;
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
