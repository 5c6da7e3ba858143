/**
 * PEFT's adapter folder (adapter_config.json, adapter_model.safetensors), both ways: a checkpoint's
 * adapters as PeftModel.save_pretrained writes them (peftFiles), and a folder PEFT wrote as adapters on a
 * gta model (withPeftAdapters). Tensor names are `base_model.model.<module path>.lora_A.weight`, with
 * lora_A [r, in] and lora_B [out, r]: gta's A [in, r] and B [r, out] transposed.
 */
import fs from 'node:fs';
import path from 'node:path';
import tf from '../util/tfjs.cjs';
import type { Arch, LoraSpec } from './arch.js';
import { loraTargets, resolveTargets, type LoraTarget } from './lora.js';
import { SafetensorsReader, type LazyArray } from './safetensors.js';
import type { Transformer } from './transformer.js';
import { GtaError } from '../util/errors.js';
import { Rng } from '../util/rng.js';

/** PEFT's tensor name of an adapter's A or B (`base_model.model.<module path>.lora_A.weight`). */
function peftName(t: LoraTarget, which: 'A' | 'B'): string {
  return `base_model.model.${t.hfPath}.lora_${which}.weight`;
}

/**
 * adapter_config.json and adapter_model.safetensors's arrays, as PEFT's save_pretrained writes them:
 * lora_A.weight [r, in] and lora_B.weight [out, r] (gta's A and B transposed), float32.
 */
export function peftFiles(arch: Arch & { lora: LoraSpec }, params: Map<string, tf.Variable>): { config: Record<string, unknown>; arrays: Map<string, LazyArray> } {
  const spec = arch.lora;
  const arrays = new Map<string, LazyArray>();
  for (const t of loraTargets(arch)) {
    for (const which of ['A', 'B'] as const) {
      const v = params.get(which === 'A' ? t.a : t.b)!;
      const [rows, cols] = v.shape;
      arrays.set(peftName(t, which), { dtype: 'F32', shape: [cols, rows], read: () => tf.tidy(() => tf.transpose(v).dataSync() as Float32Array) });
    }
  }
  const config = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: spec.base_model,
    r: spec.r,
    lora_alpha: spec.alpha,
    lora_dropout: spec.dropout,
    target_modules: spec.target_modules,
    bias: 'none',
    // GPT-2's Conv1D keeps its weight as [in, out]: PEFT sets this for it
    fan_in_fan_out: arch.style?.family === 'gpt2',
    use_rslora: false,
    use_dora: false,
    init_lora_weights: true,
    inference_mode: true,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    revision: null,
  };
  return { config, arrays };
}

/**
 * `model` with the adapters of a PEFT adapter folder (adapter_config.json, adapter_model.safetensors,
 * as PeftModel.save_pretrained writes them, or gta's checkpoints). LoRA as gta computes it only: no
 * rsLoRA, DoRA, bias training, per-layer ranks or layer subsets; each refusal is one line naming the file.
 */
export function withPeftAdapters(model: Transformer, dir: string): Transformer {
  const file = path.join(dir, 'adapter_config.json');
  if (!fs.existsSync(file)) throw new GtaError(`${file}: missing (not a PEFT adapter folder)`);
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new GtaError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const refuse = (key: string, why: string) => {
    throw new GtaError(`${file}: ${key} ${why}; gta computes plain LoRA only`);
  };
  if (c.peft_type !== 'LORA') refuse('peft_type', `is ${JSON.stringify(c.peft_type)}, not "LORA"`);
  if (c.use_rslora) refuse('use_rslora', 'is true');
  if (c.use_dora) refuse('use_dora', 'is true');
  if ((c.bias ?? 'none') !== 'none') refuse('bias', `is ${JSON.stringify(c.bias)}`);
  if (c.layers_to_transform != null) refuse('layers_to_transform', 'is set');
  for (const k of ['rank_pattern', 'alpha_pattern']) if (c[k] && Object.keys(c[k] as object).length) refuse(k, 'is not empty');
  const targets = c.target_modules;
  if (!(Array.isArray(targets) || targets === 'all-linear')) refuse('target_modules', `is ${JSON.stringify(targets)} (gta reads a list of module names or "all-linear")`);
  const r = Number(c.r);
  const alpha = Number(c.lora_alpha);
  if (!(Number.isInteger(r) && r > 0 && alpha > 0)) refuse('r / lora_alpha', `are ${c.r} / ${c.lora_alpha}`);
  const spec: LoraSpec = {
    r,
    alpha,
    dropout: Number(c.lora_dropout ?? 0),
    target_modules: resolveTargets(model.arch, targets as string[] | 'all-linear'),
    base_model: typeof c.base_model_name_or_path === 'string' ? c.base_model_name_or_path : null,
  };
  const adapted = model.withAdapters(spec, new Rng(0));
  const reader = new SafetensorsReader(path.join(dir, 'adapter_model.safetensors'));
  const arch = { ...adapted.arch, lora: spec };
  for (const t of loraTargets(arch)) {
    for (const which of ['A', 'B'] as const) {
      const name = peftName(t, which);
      const e = reader.entries.get(name);
      const want = which === 'A' ? [r, t.in] : [t.to - t.from, r];
      if (!e) throw new GtaError(`${reader.file}: no tensor ${name}`);
      if (e.shape.join(',') !== want.join(',')) throw new GtaError(`${reader.file}: ${name} has shape [${e.shape}], expected [${want}]`);
      const value = tf.tidy(() => tf.transpose(tf.tensor(reader.float32(name), e.shape, 'float32')));
      adapted.params.get(which === 'A' ? t.a : t.b)!.assign(value);
      value.dispose();
    }
  }
  return adapted;
}
