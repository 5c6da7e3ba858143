/**
 * A Hugging Face model's weights (model.safetensors, or the shards model.safetensors.index.json
 * lists) as gta's parameters (src/model/transformer.ts, styledShapes): Hugging Face's names mapped to
 * gta's, its [out, in] Linear weights transposed to [in, out], q/k/v and gate/up laid side by side.
 * Every tensor the architecture needs must be there with the shape config.json implies, and every
 * tensor there must be one it needs: a mismatch names the file and the tensor.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GtaError } from '../util/errors.js';
import type { Arch, DecoderStyle } from './arch.js';
import { SafetensorsReader } from './safetensors.js';

/** One gta parameter from one or more Hugging Face tensors, concatenated along the output axis. */
export interface Recipe {
  target: string;
  pieces: { name: string; shape: number[]; transpose: boolean }[];
}

/** Buffers some checkpoints carry that are not weights (causal masks, rotary frequencies). */
const NOT_WEIGHTS = [/(^|\.)rotary_emb\.inv_freq$/, /^h\.\d+\.attn\.(bias|masked_bias)$/];

/** The Hugging Face tensors of each gta parameter, with the shapes config.json implies. */
export function recipes(arch: Arch, s: DecoderStyle): Recipe[] {
  const { d_model: d, d_ff: ff, n_layers: L, vocab_size: V, max_seq_len: S, n_heads: H } = arch;
  const { n_kv_heads: Hk, head_dim: dh } = s;
  const out: Recipe[] = [];
  const one = (target: string, name: string, shape: number[], transpose = false) => out.push({ target, pieces: [{ name, shape, transpose }] });
  if (s.family === 'gpt2') {
    // GPT-2's Conv1D weights are already [in, out]
    one('tok_emb', 'wte.weight', [V, d]);
    one('pos_emb', 'wpe.weight', [S, d]);
    for (let l = 0; l < L; l++) {
      const h = `h.${l}`;
      const b = `blocks.${l}`;
      one(`${b}.ln1.g`, `${h}.ln_1.weight`, [d]);
      one(`${b}.ln1.b`, `${h}.ln_1.bias`, [d]);
      one(`${b}.attn.wqkv`, `${h}.attn.c_attn.weight`, [d, 3 * d]);
      one(`${b}.attn.bqkv`, `${h}.attn.c_attn.bias`, [3 * d]);
      one(`${b}.attn.wo`, `${h}.attn.c_proj.weight`, [d, d]);
      one(`${b}.attn.bo`, `${h}.attn.c_proj.bias`, [d]);
      one(`${b}.ln2.g`, `${h}.ln_2.weight`, [d]);
      one(`${b}.ln2.b`, `${h}.ln_2.bias`, [d]);
      one(`${b}.mlp.w1`, `${h}.mlp.c_fc.weight`, [d, ff]);
      one(`${b}.mlp.b1`, `${h}.mlp.c_fc.bias`, [ff]);
      one(`${b}.mlp.w2`, `${h}.mlp.c_proj.weight`, [ff, d]);
      one(`${b}.mlp.b2`, `${h}.mlp.c_proj.bias`, [d]);
    }
    one('ln_f.g', 'ln_f.weight', [d]);
    one('ln_f.b', 'ln_f.bias', [d]);
  } else {
    one('tok_emb', 'embed_tokens.weight', [V, d]);
    for (let l = 0; l < L; l++) {
      const h = `layers.${l}`;
      const b = `blocks.${l}`;
      const proj = (p: string, rows: number, cols: number) => ({ name: `${h}.${p}.weight`, shape: [rows, cols], transpose: true });
      const bias = (p: string, n: number) => ({ name: `${h}.${p}.bias`, shape: [n], transpose: false });
      one(`${b}.ln1.g`, `${h}.input_layernorm.weight`, [d]);
      out.push({ target: `${b}.attn.wqkv`, pieces: [proj('self_attn.q_proj', H * dh, d), proj('self_attn.k_proj', Hk * dh, d), proj('self_attn.v_proj', Hk * dh, d)] });
      if (s.qkv_bias) out.push({ target: `${b}.attn.bqkv`, pieces: [bias('self_attn.q_proj', H * dh), bias('self_attn.k_proj', Hk * dh), bias('self_attn.v_proj', Hk * dh)] });
      if (s.qk_norm) {
        one(`${b}.attn.q_norm`, `${h}.self_attn.q_norm.weight`, [dh]);
        one(`${b}.attn.k_norm`, `${h}.self_attn.k_norm.weight`, [dh]);
      }
      out.push({ target: `${b}.attn.wo`, pieces: [proj('self_attn.o_proj', d, H * dh)] });
      if (s.o_bias) out.push({ target: `${b}.attn.bo`, pieces: [bias('self_attn.o_proj', d)] });
      one(`${b}.ln2.g`, `${h}.post_attention_layernorm.weight`, [d]);
      out.push({ target: `${b}.mlp.w13`, pieces: [proj('mlp.gate_proj', ff, d), proj('mlp.up_proj', ff, d)] });
      if (s.mlp_bias) out.push({ target: `${b}.mlp.b13`, pieces: [bias('mlp.gate_proj', ff), bias('mlp.up_proj', ff)] });
      out.push({ target: `${b}.mlp.w2`, pieces: [proj('mlp.down_proj', d, ff)] });
      if (s.mlp_bias) out.push({ target: `${b}.mlp.b2`, pieces: [bias('mlp.down_proj', d)] });
    }
    one('ln_f.g', 'norm.weight', [d]);
  }
  if (!s.tied) one('head', 'lm_head.weight', [V, d]);
  return out;
}

/** Where each tensor is: the single file, or the shards the index lists. */
class WeightFiles {
  /** Hugging Face name (without the model's own prefix) -> its reader and the name in the file. */
  private readonly where = new Map<string, { reader: SafetensorsReader; name: string }>();
  /** What errors about a tensor name: the index when there are shards, else the file. */
  readonly source: string;
  /** The prefix the files put before the model's tensor names ('model.', 'transformer.' or none), for messages. */
  private prefix = '';

  constructor(dir: string, private readonly prefixRe: RegExp) {
    const single = path.join(dir, 'model.safetensors');
    const index = path.join(dir, 'model.safetensors.index.json');
    if (fs.existsSync(index)) {
      this.source = index;
      let map: Record<string, string>;
      try {
        map = JSON.parse(fs.readFileSync(index, 'utf8')).weight_map;
      } catch (e) {
        throw new GtaError(`${index}: not valid JSON (${(e as Error).message})`);
      }
      if (typeof map !== 'object' || map === null) throw new GtaError(`${index}: no weight_map`);
      const shards = new Map<string, SafetensorsReader>();
      for (const shard of new Set(Object.values(map))) {
          const file = path.join(dir, shard);
          if (!fs.existsSync(file)) throw new GtaError(`${file}: missing (model.safetensors.index.json lists it)`);
        shards.set(shard, new SafetensorsReader(file));
      }
      for (const [name, shard] of Object.entries(map)) {
        const r = shards.get(shard)!;
        if (!r.entries.has(name)) throw new GtaError(`${r.file}: no tensor ${name} (model.safetensors.index.json puts it there)`);
        this.add(r, name);
      }
    } else if (fs.existsSync(single)) {
      this.source = single;
      const r = new SafetensorsReader(single);
      for (const name of r.entries.keys()) this.add(r, name);
    } else {
      const bin = fs.existsSync(path.join(dir, 'pytorch_model.bin')) ? ' (gta reads safetensors, not pytorch_model.bin: save the model with safe_serialization)' : '';
      throw new GtaError(`${single}: missing, and no model.safetensors.index.json either${bin}`);
    }
  }

  private add(reader: SafetensorsReader, raw: string): void {
    const name = raw.replace(this.prefixRe, '');
    if (name !== raw) this.prefix = raw.slice(0, raw.length - name.length);
    const prev = this.where.get(name);
    if (prev) throw new GtaError(`${reader.file}: tensor ${raw} appears twice (also as ${prev.name} in ${prev.reader.file})`);
    this.where.set(name, { reader, name: raw });
  }

  names(): string[] {
    return [...this.where.keys()];
  }

  /** A tensor's name as the files spell it (the head is never prefixed). */
  display(name: string): string {
    return this.where.get(name)?.name ?? (name === 'lm_head.weight' ? name : this.prefix + name);
  }

  /** Tensor `name` as float32, after checking its shape. */
  read(name: string, shape: number[]): Float32Array {
    const w = this.where.get(name);
    if (!w) throw new GtaError(`${this.source}: missing tensor ${this.display(name)} (config.json's architecture needs it)`);
    const got = w.reader.entries.get(w.name)!.shape;
    if (got.join(',') !== shape.join(',')) throw new GtaError(`${w.reader.file}: ${w.name} has shape [${got}], config.json implies [${shape}]`);
    return w.reader.float32(w.name);
  }

}

/**
 * gta's parameters for `arch`, one at a time through `take` (name, shape, values): a parameter is
 * assembled, handed over and dropped before the next is read, so loading holds one in JS memory.
 */
export function readHfWeights(dir: string, arch: Arch, take: (name: string, shape: number[], data: Float32Array) => void): void {
  const s = arch.style!;
  // GPT-2 files name tensors with or without "transformer.", Llama's with "model." (or without, saved from the bare model)
  const files = new WeightFiles(dir, s.family === 'gpt2' ? /^transformer\./ : /^model\./);
  const list = recipes(arch, s);
  const used = new Set(list.flatMap((r) => r.pieces.map((p) => p.name)));
  for (const name of files.names()) {
    if (used.has(name) || NOT_WEIGHTS.some((re) => re.test(name))) continue;
    // a tied model's file may carry the head anyway (as a copy of the embedding)
    if (name === 'lm_head.weight' && s.tied) continue;
    throw new GtaError(`${files.source}: unexpected tensor ${files.display(name)} (config.json's architecture has no such weight: is it the config these weights were saved with?)`);
  }
  for (const r of list) {
    const { shape, data } = assemble(r, files);
    take(r.target, shape, data);
  }
}

/** A recipe's pieces side by side along the output axis, [in, sum of outs] (or [sum] for biases and vectors). */
function assemble(r: Recipe, files: WeightFiles): { shape: number[]; data: Float32Array } {
  if (r.pieces.length === 1 && !r.pieces[0].transpose) return { shape: r.pieces[0].shape, data: files.read(r.pieces[0].name, r.pieces[0].shape) };
  if (r.pieces[0].shape.length === 1) {
    const parts = r.pieces.map((p) => files.read(p.name, p.shape));
    const data = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      data.set(p, at);
      at += p.length;
    }
    return { shape: [data.length], data };
  }
  // transposed [out, in] pieces -> [in, total out]
  const inDim = r.pieces[0].shape[1];
  const cols = r.pieces.reduce((n, p) => n + p.shape[0], 0);
  const data = new Float32Array(inDim * cols);
  let off = 0;
  for (const p of r.pieces) {
    const src = files.read(p.name, p.shape);
    const rows = p.shape[0];
    for (let o = 0; o < rows; o++) {
      const from = o * inDim;
      for (let i = 0; i < inDim; i++) data[i * cols + off + o] = src[from + i];
    }
    off += rows;
  }
  return { shape: [inDim, cols], data };
}
