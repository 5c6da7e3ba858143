/**
 * AdamW (decoupled weight decay) with global-norm gradient clipping. Its moments live in named
 * variables so a checkpoint can save and restore them exactly. Decay applies to matrices only
 * (weights and embeddings), not to biases and layer-norm gains, as is usual for transformers.
 */
import tf from '../util/tfjs.cjs';
import type { OptimConfig } from '../config/schema.js';
import { adamwUpdate } from '../backend/fused.js';
import { adamwInPlace, assignInPlace } from '../backend/torch/in_place.js';
import { gradDots } from '../backend/grad_dots.js';
import type { OptimizerState } from '../model/checkpoint.js';
import { Transformer } from '../model/transformer.js';
import { GtaError } from '../util/errors.js';
import { crashPoint } from '../util/fault.js';

/** A NaN or Inf where training needs finite numbers; the step was not applied. */
export class NonFiniteError extends Error {
  constructor(readonly what: string) {
    super(`non-finite ${what}`);
  }
}

export class AdamW {
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  /** Number of updates applied so far (bias correction uses it). */
  private t = 0;

  constructor(
    private readonly params: Map<string, tf.Variable>,
    private readonly cfg: OptimConfig,
  ) {
    for (const [name, p] of params) {
      // process-unique names (several optimizers can live in one process); each owns its data, so apply can update it in place
      // zerosLike: in the parameter's stored dtype (bfloat16 under bf16-true), as torch.optim.AdamW's state
      this.m.set(name, Transformer.variable(`m.${name}`, tf.zerosLike(p), false));
      this.v.set(name, Transformer.variable(`v.${name}`, tf.zerosLike(p), false));
    }
  }

  /** Global L2 norm of a set of gradients (one scalar read back). */
  static globalNorm(grads: Record<string, tf.Tensor>): number {
    return Math.sqrt(gradDots(Object.values(grads)).aa);
  }

  /**
   * Applies one update with learning rate `lr`. Returns the gradient norm before clipping.
   * The gradients are not disposed here (the caller owns them).
   */
  apply(grads: Record<string, tf.Tensor>, lr: number, gradNorm = AdamW.globalNorm(grads)): number {
    if (!Number.isFinite(gradNorm)) throw new NonFiniteError(`gradient (${nonFiniteNames(grads).join(', ')})`);
    const { beta1, beta2, eps, weight_decay: wd, grad_clip: clip } = this.cfg;
    const scale = clip > 0 && gradNorm > clip ? clip / gradNorm : 1;
    this.t += 1;
    const bc1 = 1 - Math.pow(beta1, this.t);
    const bc2 = 1 - Math.pow(beta2, this.t);
    const names = Object.keys(grads);
    const param = (name: string): tf.Variable => {
      const p = this.params.get(name);
      if (!p) throw new Error(`gradient for unknown parameter ${name}`);
      return p;
    };
    const step = { lr, beta1, beta2, eps, weightDecay: wd, bc1, bc2, scale };
    // in place where the backend can (no second copy of weights and moments); the rest in one fused call
    const rest: string[] = [];
    for (const [i, name] of names.entries()) {
      const p = param(name);
      // seed: bfloat16 parameters' stochastic rounding (native/adamw.cc), a stream per update and parameter
      if (adamwInPlace(p, grads[name], this.m.get(name)!, this.v.get(name)!, p.rank >= 2, { ...step, seed: this.t * 2 ** 20 + i })) crashPoint('optimizer');
      else rest.push(name);
    }
    const ps = rest.map(param);
    const next = tf.tidy(() => adamwUpdate(ps, rest.map((n) => grads[n]), rest.map((n) => this.m.get(n)!), rest.map((n) => this.v.get(n)!), ps.map((p) => p.rank >= 2), step));
    rest.forEach((name, i) => {
      this.m.get(name)!.assign(next.m[i]);
      this.v.get(name)!.assign(next.v[i]);
      ps[i].assign(next.p[i]);
      crashPoint('optimizer'); // tests: killed with half the parameters updated
    });
    tf.dispose([...next.p, ...next.m, ...next.v]);
    return gradNorm;
  }

  /** The moments as named float32 arrays (`m.<param>`, `v.<param>`) and the update count: what a checkpoint saves (read when it writes them). */
  state(): OptimizerState {
    const arrays: OptimizerState['arrays'] = new Map();
    for (const [prefix, vars] of [['m', this.m], ['v', this.v]] as const) {
      // read when the checkpoint writer reaches it: one moment in JS memory at a time
      for (const [name, x] of vars) arrays.set(`${prefix}.${name}`, { dtype: 'F32', shape: x.shape, read: () => x.dataSync() as Float32Array });
    }
    return { t: this.t, arrays };
  }

  /** Restores what state() returned; `source` names the file in errors. */
  load(state: OptimizerState, source: string): void {
    for (const [prefix, vars] of [['m', this.m], ['v', this.v]] as const) {
      for (const [name, x] of vars) {
        const a = state.arrays.get(`${prefix}.${name}`);
        if (!a || a.shape.join(',') !== x.shape.join(',')) throw new GtaError(`${source}: optimizer state for ${name} is missing or has the wrong shape`);
        const t = tf.tensor(a.read(), a.shape, 'float32');
        // in place: moments stored in bfloat16 (bf16-true) stay so
        assignInPlace(x, t);
        t.dispose();
      }
    }
    this.t = state.t;
  }

  dispose(): void {
    tf.dispose([...this.m.values(), ...this.v.values()]);
  }
}

/** The parameters whose gradient holds a NaN or Inf (for the error message). */
function nonFiniteNames(grads: Record<string, tf.Tensor>): string[] {
  return Object.entries(grads)
    .filter(([, g]) => tf.tidy(() => tf.any(tf.logicalNot(tf.isFinite(g))).dataSync()[0] === 1))
    .map(([name]) => name);
}
