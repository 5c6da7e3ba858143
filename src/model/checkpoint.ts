/**
 * A checkpoint is a folder: model.safetensors, config.json (architecture and what wrote it),
 * tokenizer.json, and for a training checkpoint also optimizer.safetensors and trainer_state.json; a
 * Hugging Face model's LoRA adapters also as PEFT writes them (adapter_config.json, adapter_model.safetensors).
 * Folders are written under a temporary name, fsynced, then renamed into place, so a crash leaves
 * either the old checkpoint or the new one, never half of one.
 */
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import tf from '../util/tfjs.cjs';
import { tokenizerFromJSON } from '../tokenizer/from_json.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { GtaError, writeError } from '../util/errors.js';
import { crashPoint } from '../util/fault.js';
import { parseArch, type Arch } from './arch.js';
import { peftFiles } from './peft.js';
import { Transformer } from './transformer.js';
import { SafetensorsReader, sha256File, writeSafetensors, type LazyArray } from './safetensors.js';

export const CHECKPOINT_FORMAT = 'gta-checkpoint';

export interface CheckpointMeta {
  format: typeof CHECKPOINT_FORMAT;
  version: 1;
  arch: Arch;
  tokenizer: string;
  /** What the weights are: a pretrained base LM or a fine-tuned run's. */
  kind: 'base' | 'training';
  step: number;
  created: string;
  /** sha256 of every other file in the folder: a truncated or corrupted file is caught at load. */
  sha256: Record<string, string>;
}

export interface Loaded {
  model: Transformer;
  tokenizer: TextTokenizer;
  meta: CheckpointMeta;
  dir: string;
}

/** Everything a training step depends on besides weights and optimizer moments. */
export type TrainerState = { step: number };

/** An optimizer's state as named arrays (optimizer.safetensors), read one at a time, and its update count. */
export interface OptimizerState {
  t: number;
  arrays: Map<string, LazyArray>;
}

export function saveCheckpoint(
  dir: string,
  model: Transformer,
  tokenizer: TextTokenizer,
  info: { kind: CheckpointMeta['kind']; step: number; optimizer?: OptimizerState; trainerState?: TrainerState },
): void {
  const tmp = `${dir}.tmp-${process.pid}`;
  try {
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { recursive: true });
    writeFiles(tmp, model, tokenizer, info);
  } catch (e) {
    // Free the space the half-written folder took; the previous checkpoint is untouched.
    fs.rmSync(tmp, { recursive: true, force: true });
    throw writeError(dir, e);
  }
  const old = `${dir}.old-${process.pid}`;
  if (fs.existsSync(dir)) fs.renameSync(dir, old);
  fs.renameSync(tmp, dir);
  syncDir(path.dirname(dir));
  fs.rmSync(old, { recursive: true, force: true });
}

/** Writes and fsyncs every file of a checkpoint into `tmp`, config.json (with the checksums) last. */
function writeFiles(tmp: string, model: Transformer, tokenizer: TextTokenizer, info: Parameters<typeof saveCheckpoint>[3]): void {
  const sha256: Record<string, string> = {};
  const put = (name: string, data: string | Buffer) => {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    sha256[name] = createHash('sha256').update(buf).digest('hex');
    writeSynced(path.join(tmp, name), buf);
  };
  // the weights and moments a tensor at a time (fsynced by writeSafetensors)
  const tensors = (name: string, arrays: Map<string, LazyArray>, metadata: Record<string, string>) => {
    sha256[name] = writeSafetensors(path.join(tmp, name), arrays, metadata);
  };
  tensors('model.safetensors', toArrays(model.params), { format: 'pt' });
  const { lora, style } = model.arch;
  if (lora && style) {
    // the adapters again in PEFT's format, for PeftModel.from_pretrained(<the base model>, <this folder>)
    const peft = peftFiles({ ...model.arch, lora }, model.params);
    tensors('adapter_model.safetensors', peft.arrays, { format: 'pt' });
    put('adapter_config.json', JSON.stringify(peft.config, null, 2));
  }
  put('tokenizer.json', JSON.stringify(tokenizer.toJSON()));
  crashPoint('checkpoint'); // tests: killed halfway through writing the folder
  if (info.optimizer) tensors('optimizer.safetensors', info.optimizer.arrays, { t: String(info.optimizer.t) });
  if (info.trainerState) put('trainer_state.json', JSON.stringify(info.trainerState, null, 2));
  const meta: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    version: 1,
    arch: model.arch,
    tokenizer: tokenizer.fingerprint(),
    kind: info.kind,
    step: info.step,
    created: new Date().toISOString(),
    sha256,
  };
  // config.json last: its presence marks a complete folder.
  writeSynced(path.join(tmp, 'config.json'), JSON.stringify(meta, null, 2));
  syncDir(tmp);
}

function syncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** A checkpoint folder's config.json. */
function readMeta(dir: string): CheckpointMeta {
  const metaFile = path.join(dir, 'config.json');
  if (!fs.existsSync(dir)) throw new GtaError(`${dir}: no such checkpoint folder`);
  if (!fs.existsSync(metaFile)) throw new GtaError(`${metaFile}: missing (neither a gta checkpoint nor a Hugging Face model folder)`);
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(fs.readFileSync(metaFile, 'utf8'));
  } catch (e) {
    throw new GtaError(`${metaFile}: not valid JSON (${(e as Error).message})`);
  }
  if (meta.format !== CHECKPOINT_FORMAT) throw new GtaError(`${metaFile}: not a gta checkpoint (format '${meta.format}') nor a Hugging Face model config (no model_type)`);
  return meta;
}

export function loadCheckpoint(dir: string): Loaded {
  const metaFile = path.join(dir, 'config.json');
  const meta = readMeta(dir);
  const arch = parseArch(meta.arch);
  if (!arch.success) throw new GtaError(`${metaFile}: bad architecture (${arch.error.issues[0].path.join('.')}: ${arch.error.issues[0].message})`);
  const tokFile = path.join(dir, 'tokenizer.json');
  let tokenizer: TextTokenizer;
  try {
    tokenizer = tokenizerFromJSON(JSON.parse(readVerified(dir, 'tokenizer.json', meta).toString('utf8')));
  } catch (e) {
    // readVerified's errors name the file already; the tokenizer's and JSON.parse's do not.
    const msg = (e as Error).message;
    throw e instanceof GtaError && msg.startsWith(tokFile) ? e : new GtaError(`${tokFile}: ${msg}`);
  }
  if (tokenizer.fingerprint() !== meta.tokenizer) throw new GtaError(`${tokFile}: tokenizer does not match the one the checkpoint was trained with`);
  if (tokenizer.vocabSize !== arch.data.vocab_size)
    throw new GtaError(`${dir}: tokenizer has ${tokenizer.vocabSize} tokens but the model's vocab_size is ${arch.data.vocab_size}`);
  const weightsFile = path.join(dir, 'model.safetensors');
  const weights = verifiedTensors(dir, 'model.safetensors', meta);
  const expected = Transformer.shapes(arch.data);
  for (const [name, shape] of expected) {
    const t = weights.entries.get(name);
    if (!t) throw new GtaError(`${weightsFile}: missing parameter ${name}`);
    if (t.shape.join(',') !== shape.join(',')) throw new GtaError(`${weightsFile}: parameter ${name} has shape [${t.shape}], the architecture needs [${shape}]`);
  }
  for (const name of weights.entries.keys()) if (!expected.has(name)) throw new GtaError(`${weightsFile}: unexpected parameter ${name}`);
  const params = new Map<string, tf.Variable>();
  for (const [name, shape] of expected) params.set(name, Transformer.variable(name, tf.tensor(weights.float32(name), shape, 'float32')));
  return { model: new Transformer(arch.data, params), tokenizer, meta: { ...meta, arch: arch.data }, dir };
}

/** The optimizer state and trainer state of a training checkpoint, each file checked against its checksum. */
export function loadTrainingState(dir: string): { optimizer: OptimizerState; optimizerFile: string; trainer: TrainerState } {
  const meta = readMeta(dir);
  const optimizerFile = path.join(dir, 'optimizer.safetensors');
  const r = verifiedTensors(dir, 'optimizer.safetensors', meta);
  const arrays = new Map<string, LazyArray>();
  for (const [name, e] of r.entries) arrays.set(name, { dtype: 'F32', shape: e.shape, read: () => r.float32(name) });
  return { optimizer: { t: Number(r.metadata.t ?? 0), arrays }, optimizerFile, trainer: readTrainerState(dir) };
}

/**
 * Checks every file of a training checkpoint against its recorded checksum without loading anything:
 * a resume calls it before it changes the run directory, so a truncated optimizer.safetensors is
 * refused while the run is still as it was (it used to be found only after the resume had dropped
 * summary.json and predictions.jsonl and marked the run failed).
 */
export function checkTrainingCheckpoint(dir: string): void {
  const meta = readMeta(dir);
  const names = new Set(['model.safetensors', 'tokenizer.json', 'optimizer.safetensors', 'trainer_state.json', ...Object.keys(meta.sha256 ?? {})]);
  for (const name of names) {
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) throw new GtaError(`${file}: missing from the checkpoint`);
    checkSum(file, name, meta, sha256File(file));
  }
}

/** A training checkpoint's trainer_state.json (checked against its checksum). */
export function readTrainerState(dir: string): TrainerState {
  const file = path.join(dir, 'trainer_state.json');
  try {
    return JSON.parse(readVerified(dir, 'trainer_state.json', readMeta(dir)).toString('utf8')) as TrainerState;
  } catch (e) {
    if (e instanceof GtaError) throw e;
    throw new GtaError(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** A checkpoint file, checked against the sha256 that config.json recorded for it. */
function readVerified(dir: string, name: string, meta: CheckpointMeta): Buffer {
  const file = path.join(dir, name);
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch {
    throw new GtaError(`${file}: missing from the checkpoint`);
  }
  checkSum(file, name, meta, createHash('sha256').update(buf).digest('hex'));
  return buf;
}

/** A checkpoint's safetensors file, its checksum verified in a streaming pass, then read a tensor at a time. */
function verifiedTensors(dir: string, name: string, meta: CheckpointMeta): SafetensorsReader {
  const file = path.join(dir, name);
  if (!fs.existsSync(file)) throw new GtaError(`${file}: missing from the checkpoint`);
  checkSum(file, name, meta, sha256File(file));
  return new SafetensorsReader(file);
}

function checkSum(file: string, name: string, meta: CheckpointMeta, got: string): void {
  const want = meta.sha256?.[name];
  if (want === undefined) throw new GtaError(`${file}: the checkpoint records no checksum for it`);
  if (got !== want) throw new GtaError(`${file}: corrupted or truncated (checksum mismatch)`);
}

/** The parameters, each read from the backend only when the writer reaches it. */
function toArrays(vars: Map<string, tf.Variable>): Map<string, LazyArray> {
  const out = new Map<string, LazyArray>();
  for (const [name, v] of vars) out.set(name, { dtype: 'F32', shape: v.shape, read: () => v.dataSync() as Float32Array });
  return out;
}

function writeSynced(file: string, data: string | Buffer): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
