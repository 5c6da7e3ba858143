/**
 * The valid keys of a config schema as dotted paths (walked from the zod schema itself, so the list can
 * never drift from it), and the nearest of them to a misspelt or misplaced key, for "did you mean ...?".
 */
import { distance } from 'fastest-levenshtein';

/** The little of a zod v4 schema's definition the walk reads (`schema._zod.def`, zod's documented internals). */
interface SchemaLike {
  _zod: { def: Record<string, unknown> & { type: string } };
}

/**
 * Every key path a config may hold, parents before children, in schema order: `name`, `data`,
 * `data.name`, ..., `train.optim.lr`. Wrappers (default, prefault, optional, refinements, pipes) are
 * looked through; lists are leaves (their items have no keys of their own).
 */
export function keyPaths(schema: unknown): string[] {
  const out: string[] = [];
  const walk = (s: unknown, prefix: string, depth: number): void => {
    if (depth > 20 || typeof s !== 'object' || s === null || !('_zod' in s)) return;
    const def = (s as SchemaLike)._zod.def;
    switch (def.type) {
      case 'object':
        for (const [k, v] of Object.entries(def.shape as Record<string, unknown>)) {
          const p = prefix ? `${prefix}.${k}` : k;
          out.push(p);
          walk(v, p, depth + 1);
        }
        return;
      case 'pipe':
        return walk(def.in, prefix, depth + 1);
      case 'union':
        for (const o of def.options as unknown[]) walk(o, prefix, depth + 1);
        return;
      case 'intersection':
        walk(def.left, prefix, depth + 1);
        walk(def.right, prefix, depth + 1);
        return;
      default:
        // default, prefault, optional, nullable, readonly, catch, nonoptional...
        if ('innerType' in def) walk(def.innerType, prefix, depth + 1);
    }
  };
  walk(schema, '', 0);
  return [...new Set(out)];
}

/**
 * Names other tools (Hugging Face's TrainingArguments, TRL, Keras, PyTorch Lightning, common YAML
 * habits) use for a gta key, normalised as `normalise` does. A synonym is offered only when its target
 * exists in the schema being loaded; typos of a synonym count too ("learnin_rate" is one edit from
 * "learning_rate").
 */
const SYNONYMS: Record<string, string> = {
  dataset: 'data.name',
  datasetname: 'data.name',
  task: 'data.name',
  learningrate: 'train.optim.lr',
  lr: 'train.optim.lr',
  epochs: 'train.epochs',
  numepochs: 'train.epochs',
  numtrainepochs: 'train.epochs',
  epoch: 'train.epochs',
  maxepochs: 'train.epochs',
  batchsize: 'train.batch_size',
  bs: 'train.batch_size',
  trainbatchsize: 'train.batch_size',
  perdevicetrainbatchsize: 'train.batch_size',
  steps: 'train.steps',
  maxsteps: 'train.steps',
  numsteps: 'train.steps',
  trainsteps: 'train.steps',
  weightdecay: 'train.optim.weight_decay',
  wd: 'train.optim.weight_decay',
  warmup: 'train.optim.warmup_steps',
  warmupsteps: 'train.optim.warmup_steps',
  maxgradnorm: 'train.optim.grad_clip',
  gradclip: 'train.optim.grad_clip',
  clipgradnorm: 'train.optim.grad_clip',
  gradientclipval: 'train.optim.grad_clip',
  lrscheduler: 'train.optim.schedule',
  lrschedulertype: 'train.optim.schedule',
  scheduler: 'train.optim.schedule',
  optimizer: 'train.optim',
  evalsteps: 'train.eval_every',
  evalinterval: 'train.eval_every',
  savesteps: 'train.checkpoint_every',
  saveevery: 'train.checkpoint_every',
  loggingsteps: 'train.log_every',
  loginterval: 'train.log_every',
  dropout: 'train.dropout',
  outputdir: 'output_dir',
  outdir: 'output_dir',
  randomseed: 'seed',
  modelname: 'init',
  modelnameorpath: 'init',
  basemodel: 'init',
  pretrained: 'init',
  checkpoint: 'init',
  numgenerations: 'rl.group_size',
  groupsize: 'rl.group_size',
  klcoef: 'rl.beta',
  kl: 'rl.beta',
  beta: 'rl.beta',
  temperature: 'rl.temperature',
  textcolumn: 'data.text_column',
  textfield: 'data.text_column',
  textkey: 'data.text_column',
  labelcolumn: 'data.label_column',
  labelfield: 'data.label_column',
  labelkey: 'data.label_column',
  labels: 'data.labels',
  labelnames: 'data.labels',
  classes: 'data.labels',
  classnames: 'data.labels',
  trainfile: 'data.train_file',
  trainpath: 'data.train_file',
  devfile: 'data.dev_file',
  validationfile: 'data.dev_file',
  valfile: 'data.dev_file',
  testfile: 'data.test_file',
  template: 'prompt.template',
  prompttemplate: 'prompt.template',
};

/** Case, `_`, `-` and spaces do not matter when comparing names: batchSize ~ batch_size ~ batch-size. */
function normalise(key: string): string {
  return key.toLowerCase().replace(/[-_\s]/g, '');
}

/** Edits allowed between a key and a suggestion: 1 for short names, up to 3 for long ones. */
function tolerance(n: number): number {
  return n <= 4 ? 1 : n <= 8 ? 2 : 3;
}

/**
 * The valid key paths nearest to the unknown `key` found under `parent` (a dotted path, '' at the top),
 * best first (at most two when they tie), or [] when none is close. Nearest by Levenshtein distance
 * between normalised last segments; ties go to keys under the same parent, then to shorter paths.
 */
export function suggestKeys(key: string, parent: string, paths: string[]): string[] {
  const valid = new Set(paths);
  const name = normalise(key);
  if (name === '') return [];
  const own = parent ? `${parent}.${key}` : key;
  // The same name spelt another way under the same parent (batchSize for batch_size) beats any synonym.
  const sibling = paths.find((p) => p !== own && p.startsWith(parent ? `${parent}.` : '') && !p.slice(parent ? parent.length + 1 : 0).includes('.') && normalise(p.slice(p.lastIndexOf('.') + 1)) === name);
  if (sibling !== undefined) return [sibling];
  const exactSynonym = SYNONYMS[name];
  if (exactSynonym !== undefined && valid.has(exactSynonym) && exactSynonym !== own) return [exactSynonym];
  // A key split at a dot where the real one has '_' (eval.every for train.eval_every): the two names joined.
  const joined = normalise(`${parent.slice(parent.lastIndexOf('.') + 1)}${key}`);
  if (parent !== '') {
    const whole = paths.filter((p) => p !== own && normalise(p.slice(p.lastIndexOf('.') + 1)) === joined);
    const viaSynonym = SYNONYMS[joined];
    if (whole.length === 0 && viaSynonym !== undefined && valid.has(viaSynonym)) whole.push(viaSynonym);
    if (whole.length > 0) return whole.sort((a, b) => a.split('.').length - b.split('.').length).slice(0, 2);
  }
  const candidates: { path: string; leaf: string }[] = [
    ...paths.map((p) => ({ path: p, leaf: normalise(p.slice(p.lastIndexOf('.') + 1)) })),
    ...Object.entries(SYNONYMS)
      .filter(([, target]) => valid.has(target))
      .map(([syn, target]) => ({ path: target, leaf: syn })),
  ];
  const parentOf = (p: string) => (p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '');
  const scored = candidates
    .filter((c) => c.path !== own)
    .map((c) => ({ path: c.path, d: distance(name, c.leaf), sameParent: parentOf(c.path) === parent ? 0 : 1, depth: c.path.split('.').length }))
    .filter((c) => c.d <= tolerance(Math.max(name.length, 1)) && c.d < Math.max(name.length, 2))
    .sort((a, b) => a.d - b.d || a.sameParent - b.sameParent || a.depth - b.depth);
  if (scored.length === 0) return [];
  const best = scored[0];
  const tied = scored.filter((c) => c.d === best.d && c.sameParent === best.sameParent && c.depth === best.depth).map((c) => c.path);
  return [...new Set(tied)].slice(0, 2);
}
