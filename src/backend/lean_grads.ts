/**
 * tf.variableGrads with a backward pass that frees as it goes, as PyTorch's autograd does. tfjs's own
 * (engine.gradients, tape.ts backpropagateGradients) keeps every intermediate tensor's gradient and
 * every tensor saved for the backward until the whole backward has finished, so its peak holds the
 * activations twice over (a 0.6B model's SFT step: about 2 GB more than PyTorch). Here a node's saved
 * tensors and its outputs' gradients are disposed as soon as the node has been walked: each is read by
 * that node alone, and a second gradient of a tensor is added into its first in place where the
 * backend can (src/backend/torch/in_place.ts). Same tape, same gradient functions, same order of
 * accumulation, so the same values.
 *
 * It reaches into the engine's tape (state.activeTape, startTape/endTape), which tfjs does not export
 * (package-lock pins tfjs 4.22); test/lean_grads.test.ts checks the result against tf.variableGrads.
 * Inside another gradient (higher order) it defers to tfjs's own.
 */
import tf from '../util/tfjs.cjs';
import { addInPlace } from './torch/in_place.js';

interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
  saved?: tf.Tensor[];
}

interface EngineInternals {
  registeredVariables: Record<string, tf.Variable>;
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  startTape(): void;
  endTape(): void;
}

/** The nodes on a path from one of `xs` to `y`, their inputs pruned to those that depend on an x (tape.ts getFilteredNodesXToY). */
function pathNodes(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      for (const o of node.outputs) fromX.add(o.id);
      nodesFromX.add(node.id);
    }
  }
  const toY = new Set([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((o) => toY.has(o.id))) {
      for (const t of Object.values(node.inputs)) toY.add(t.id);
      nodesToY.add(node.id);
    }
  }
  return tape
    .filter((n) => nodesFromX.has(n.id) && nodesToY.has(n.id))
    .map((n) => ({ ...n, inputs: Object.fromEntries(Object.entries(n.inputs).filter(([, t]) => fromX.has(t.id))) }));
}

/** Gradients of the scalar f() with respect to the trainable variables (all registered ones unless `varList`), keyed by variable name. */
export function variableGrads(f: () => tf.Scalar, varList?: tf.Variable[]): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  const engine = tf.engine() as unknown as EngineInternals;
  if (engine.state.gradientDepth > 0) return tf.variableGrads(f, varList);
  const xs = (varList ?? Object.values(engine.registeredVariables)).filter((v) => v.trainable);
  if (xs.length === 0) throw new Error('variableGrads: no trainable variables');
  const { value, grads } = gradients(f, xs);
  if (value.rank !== 0) throw new Error(`variableGrads: f must return a scalar, got rank ${value.rank}`);
  const named: tf.NamedTensorMap = {};
  xs.forEach((x, i) => {
    if (grads[i]) named[x.name] = grads[i]!;
  });
  if (Object.keys(named).length === 0) throw new Error('Cannot find a connection between any variable and the result of the loss function y=f(x).');
  return { value: value as tf.Scalar, grads: named };
}

/** tf.grads(f)(xs, dy) with the freeing backward: the gradient of every x (each must reach f's result) and f's value. */
export function grads(f: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[], dy: tf.Tensor): { value: tf.Tensor; grads: tf.Tensor[] } {
  const engine = tf.engine() as unknown as EngineInternals;
  if (engine.state.gradientDepth > 0) return tf.valueAndGrads(f)(xs, dy);
  const r = gradients(() => f(...xs), xs, dy);
  if (r.grads.some((g) => g === null)) throw new Error('Cannot compute gradient of y=f(x) with respect to x: some x does not reach y.');
  return { value: r.value, grads: r.grads as tf.Tensor[] };
}

/** engine.gradients, freeing as it goes: f's value and each x's gradient (null where x does not reach it); the seed is dy, else ones. */
function gradients(f: () => tf.Tensor, xs: tf.Tensor[], dy?: tf.Tensor): { value: tf.Tensor; grads: (tf.Tensor | null)[] } {
  const engine = tf.engine() as unknown as EngineInternals;
  const y = engine.scopedRun(
    () => engine.startTape(),
    () => engine.endTape(),
    () => tf.tidy(f),
  );
  const tape = engine.state.activeTape!;
  try {
    // a map, not an array with nulls: tidy keeps the tensors of what it returns
    const found = tf.tidy(() => {
      const keep = new Set(xs.map((x) => x.id));
      const acc = new Map<number, tf.Tensor>([[y.id, dy ? dy.clone() : tf.onesLike(y)]]);
      for (const node of pathNodes(tape, xs, y).reverse()) {
        if (!node.gradient) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
        const dys = node.outputs.map((o) => acc.get(o.id) ?? null);
        const fns = node.gradient(dys);
        // what this node frees afterwards: a gradient function may hand one of them back as its result
        const freed = new Set<tf.Tensor>([...dys.filter((d): d is tf.Tensor => d !== null), ...(node.saved ?? [])]);
        for (const [name, x] of Object.entries(node.inputs)) {
          if (!(name in fns)) throw new Error(`Cannot backprop through input ${name}. Available gradients found: ${Object.keys(fns)}.`);
          let dx = tf.tidy(() => fns[name]());
          if (freed.has(dx)) dx = dx.clone();
          if (dx.dtype !== 'float32' || !tf.util.arraysEqual(dx.shape, x.shape)) throw new Error(`Error in gradient for op ${node.kernelName}: input '${name}' got a ${dx.dtype} gradient of shape [${dx.shape}] for [${x.shape}]`);
          const cur = acc.get(x.id);
          if (!cur) acc.set(x.id, dx);
          else {
            // into the sum where the backend can (a tied embedding's two [vocab, d] gradients), else a new one
            if (!addInPlace(cur, dx)) {
              acc.set(x.id, tf.add(cur, dx));
              cur.dispose();
            }
            dx.dispose();
          }
        }
        for (const o of node.outputs) {
          if (keep.has(o.id)) continue;
          acc.get(o.id)?.dispose();
          acc.delete(o.id);
        }
        for (const t of node.saved ?? []) t.dispose();
      }
      const out: Record<string, tf.Tensor> = {};
      xs.forEach((x, i) => {
        const g = acc.get(x.id);
        if (g) out[i] = g;
      });
      return out;
    });
    return { value: y, grads: xs.map((_, i) => found[i] ?? null) };
  } finally {
    // what the walk did not reach (nodes off the path), as engine.gradients does at the end
    for (const node of tape) for (const t of node.saved ?? []) t.dispose();
    engine.state.activeTape = null;
  }
}
