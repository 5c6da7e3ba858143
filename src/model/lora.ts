/**
 * Low-rank adapters (LoRA, Hu et al. 2021) as PEFT builds them: a targeted linear layer y = x W + b
 * becomes y + scale * dropout(x) A B, with A [in, r] and B [r, out] the only trained weights
 * (scale = alpha / r), B starting at zero so the adapted model starts as the base. Modules are named as
 * PEFT names them for each family (q_proj ... down_proj; GPT-2's c_attn, c_proj, c_fc); gta keeps q, k
 * and v (and gate and up) side by side in one weight, so an adapter may cover a column range of it.
 *
 * The adapters are part of the architecture (Arch.lora): a checkpoint's config.json carries them,
 * Transformer.shapes lists their parameters, and a model with adapters freezes everything else. PEFT's
 * file format (a checkpoint's adapters for `PeftModel.from_pretrained(base, dir)`, and back) is peft.ts.
 */
import tf from '../util/tfjs.cjs';
import type { Arch, LoraSpec } from './arch.js';
import { GtaError } from '../util/errors.js';
import type { Rng } from '../util/rng.js';

/** One adapter: module `module` of layer `layer`, covering columns [from, to) of gta weight `weight`. */
export interface LoraTarget {
  layer: number;
  module: string;
  weight: string;
  from: number;
  to: number;
  /** The weight's input width (A's rows). */
  in: number;
  /** The module's path in the Hugging Face model (PEFT's tensor names). */
  hfPath: string;
  /** gta's parameter names of A and B. */
  a: string;
  b: string;
}

/** A family's linear modules per layer, in each weight's column order: PEFT's name, gta's weight and columns, the Hugging Face path. */
function modules(arch: Arch): { module: string; weight: string; from: number; to: number; in: number; hfPath: string }[][] {
  const { d_model: d, d_ff: ff, n_heads: H, n_layers: L } = arch;
  const s = arch.style;
  const layers: ReturnType<typeof modules> = [];
  for (let l = 0; l < L; l++) {
    const b = `blocks.${l}`;
    if (!s) {
      // gta's own model: its weights' names (there is no Hugging Face path; PEFT files are not written for it)
      layers.push([
        { module: 'wqkv', weight: `${b}.attn.wqkv`, from: 0, to: 3 * d, in: d, hfPath: `${b}.attn.wqkv` },
        { module: 'wo', weight: `${b}.attn.wo`, from: 0, to: d, in: d, hfPath: `${b}.attn.wo` },
        { module: 'w1', weight: `${b}.mlp.w1`, from: 0, to: ff, in: d, hfPath: `${b}.mlp.w1` },
        { module: 'w2', weight: `${b}.mlp.w2`, from: 0, to: d, in: ff, hfPath: `${b}.mlp.w2` },
      ]);
    } else if (s.family === 'gpt2') {
      const h = `transformer.h.${l}`;
      layers.push([
        { module: 'c_attn', weight: `${b}.attn.wqkv`, from: 0, to: 3 * d, in: d, hfPath: `${h}.attn.c_attn` },
        { module: 'c_proj', weight: `${b}.attn.wo`, from: 0, to: d, in: d, hfPath: `${h}.attn.c_proj` },
        { module: 'c_fc', weight: `${b}.mlp.w1`, from: 0, to: ff, in: d, hfPath: `${h}.mlp.c_fc` },
        { module: 'c_proj', weight: `${b}.mlp.w2`, from: 0, to: d, in: ff, hfPath: `${h}.mlp.c_proj` },
      ]);
    } else {
      const h = `model.layers.${l}`;
      const q = H * s.head_dim;
      const kv = s.n_kv_heads * s.head_dim;
      layers.push([
        { module: 'q_proj', weight: `${b}.attn.wqkv`, from: 0, to: q, in: d, hfPath: `${h}.self_attn.q_proj` },
        { module: 'k_proj', weight: `${b}.attn.wqkv`, from: q, to: q + kv, in: d, hfPath: `${h}.self_attn.k_proj` },
        { module: 'v_proj', weight: `${b}.attn.wqkv`, from: q + kv, to: q + 2 * kv, in: d, hfPath: `${h}.self_attn.v_proj` },
        { module: 'o_proj', weight: `${b}.attn.wo`, from: 0, to: d, in: q, hfPath: `${h}.self_attn.o_proj` },
        { module: 'gate_proj', weight: `${b}.mlp.w13`, from: 0, to: ff, in: d, hfPath: `${h}.mlp.gate_proj` },
        { module: 'up_proj', weight: `${b}.mlp.w13`, from: ff, to: 2 * ff, in: d, hfPath: `${h}.mlp.up_proj` },
        { module: 'down_proj', weight: `${b}.mlp.w2`, from: 0, to: d, in: ff, hfPath: `${h}.mlp.down_proj` },
      ]);
    }
  }
  return layers;
}

/** The modules an architecture can adapt, as PEFT names them. */
export function moduleNames(arch: Arch): string[] {
  return [...new Set(modules(arch)[0].map((m) => m.module))];
}

/** PEFT's default target_modules when a config names none (its per-model-type table): the attention's query and value projections. */
export function defaultTargets(arch: Arch): string[] {
  if (!arch.style) return ['wqkv'];
  return arch.style.family === 'gpt2' ? ['c_attn'] : ['q_proj', 'v_proj'];
}

/**
 * train.lora's target_modules as module names of this architecture: a list (each must be a module of
 * the family: a one-line error names the key and the modules there are), 'all-linear' (PEFT's shorthand:
 * every linear layer but the output head) or absent (PEFT's default for the family).
 */
export function resolveTargets(arch: Arch, wanted: string[] | 'all-linear' | undefined): string[] {
  const known = moduleNames(arch);
  if (wanted === undefined) return defaultTargets(arch);
  if (wanted === 'all-linear') return known;
  const family = arch.style ? `a ${arch.style.model_type} model` : "gta's own model";
  for (const m of wanted) if (!known.includes(m)) throw new GtaError(`train.lora.target_modules: '${m}' is not a module of ${family} (its modules: ${known.join(', ')}; or 'all-linear')`);
  return known.filter((m) => wanted.includes(m));
}

/** Every adapter of an architecture with adapters, layer by layer, in each weight's column order. */
export function loraTargets(arch: Arch & { lora: LoraSpec }): LoraTarget[] {
  const wanted = new Set(arch.lora.target_modules);
  return modules(arch).flatMap((layer, l) =>
    layer
      .filter((m) => wanted.has(m.module))
      .map((m) => {
        const name = `${m.weight}.lora_${m.module}`;
        return { layer: l, ...m, a: `${name}.A`, b: `${name}.B` };
      }),
  );
}

/** Whether a parameter name is an adapter's (A or B). */
export function isAdapter(name: string): boolean {
  return /\.lora_[^.]+\.[AB]$/.test(name);
}

/** The scale of an adapter's output, alpha / r (PEFT without use_rslora). */
export function loraScale(spec: LoraSpec): number {
  return spec.alpha / spec.r;
}

/** The adapters' parameter shapes: A [in, r], B [r, to - from]. */
export function adapterShapes(arch: Arch & { lora: LoraSpec }): [string, number[]][] {
  const r = arch.lora.r;
  return loraTargets(arch).flatMap((t) => [
    [t.a, [t.in, r]],
    [t.b, [r, t.to - t.from]],
  ]);
}

/**
 * Fresh adapters as PEFT initialises them: A uniform in +-1/sqrt(in) (kaiming_uniform with a = sqrt(5)),
 * B zeros, drawn from `rng`.
 */
export function initialAdapters(arch: Arch & { lora: LoraSpec }, rng: Rng): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const t of loraTargets(arch)) {
    const bound = 1 / Math.sqrt(t.in);
    out.set(t.a, tf.randomUniform([t.in, arch.lora.r], -bound, bound, 'float32', rng.seed()));
    out.set(t.b, tf.zeros([arch.lora.r, t.to - t.from]));
  }
  return out;
}
