/**
 * The run config: one zod schema is the single source of truth for keys, types and defaults.
 * Every object is strict, so a misspelt key is an error rather than a silently ignored setting.
 */
import { z } from 'zod';
import { LOSS_TYPE_NAMES } from './grpo_losses.js';
import { MODES, MODE_TRAITS, type Mode } from './modes.js';
import { isBuiltinReward, REWARD_NAMES, type RewardName, type RewardSpec } from './rewards.js';

/** The TensorFlow.js backends (src/backend/select.ts); named here so that parsing a config loads no tfjs. */
export const BACKEND_NAMES = ['auto', 'torch', 'wasm', 'cpu', 'webgpu', 'tensorflow'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

const positiveInt = z.number().int().positive();
/**
 * Sizes a config may ask for, whatever the data: a job's train.batch_size=1000000000 grew past 6 GB in
 * seconds before anything could say why. Far above any batch that fits a machine; the data bounds the
 * batch more tightly at start (src/train/setup.ts).
 */
const MAX_BATCH = 65_536;
const batchSize = positiveInt.max(MAX_BATCH);
const fraction = z.number().min(0).max(1);
/** Run and sweep names become folder names. */
const runName = z.string().regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" and "-" only');

/** The architecture of the transformer; also written to a checkpoint's config.json. */
export const ModelArchSchema = z
  .object({
    vocab_size: positiveInt.min(266).default(4096),
    d_model: positiveInt.default(128),
    n_layers: positiveInt.default(2),
    n_heads: positiveInt.default(4),
    d_ff: positiveInt.default(512),
    max_seq_len: positiveInt.default(128),
  })
  .strict()
  .refine((m) => m.d_model % m.n_heads === 0, { message: 'd_model must be divisible by n_heads', path: ['n_heads'] });

export const DataSchema = z
  .object({
    /** A built-in dataset (sst2, ag_news, sst5, massive_scenario, emotion, bbc_news, trec)... */
    name: z.string().optional(),
    /** ...or a user's own files (CSV, TSV or JSONL, optionally gzipped). */
    train_file: z.string().optional(),
    dev_file: z.string().optional(),
    test_file: z.string().optional(),
    format: z.enum(['auto', 'csv', 'tsv', 'jsonl']).default('auto'),
    text_column: z.string().default('text'),
    label_column: z.string().default('label'),
    labels: z.array(z.string()).min(2).optional(),
    /** Share of train carved off as dev when a dataset ships none (seeded by split_seed, not the run seed). */
    dev_fraction: z.number().gt(0).lt(1).default(0.1),
    /** Fixed across runs on purpose: every seed of a comparison sees the same dev set. */
    split_seed: z.number().int().default(0),
    max_train_examples: positiveInt.optional(),
    max_eval_examples: positiveInt.optional(),
    /** Text tokens kept per example (longer texts are truncated from the end). */
    max_text_tokens: positiveInt.default(96),
  })
  .strict()
  .refine((d) => d.name !== undefined || d.train_file !== undefined, {
    message: 'give data.name (a built-in dataset) or data.train_file (your own file)',
  });

export const OptimSchema = z
  .object({
    lr: z.number().positive().default(1e-3),
    weight_decay: z.number().min(0).default(0.01),
    beta1: fraction.default(0.9),
    beta2: fraction.default(0.999),
    eps: z.number().positive().default(1e-8),
    warmup_steps: z.number().int().min(0).default(100),
    schedule: z.enum(['cosine', 'linear', 'constant']).default('cosine'),
    /** The schedule decays to lr * min_lr_ratio. */
    min_lr_ratio: fraction.default(0.1),
    grad_clip: z.number().min(0).default(1.0),
  })
  .strict();

export const TrainSchema = z
  .object({
    /** Total optimizer steps; if absent, epochs decides. */
    steps: positiveInt.optional(),
    epochs: z.number().positive().default(1),
    batch_size: batchSize.default(32),
    /** Default 0.1 where the mode takes dropout (MODE_TRAITS: sft, sft_then_rl's SFT phase); rl and gta run without dropout, as TRL's GRPO, so there it must be 0. */
    dropout: z.number().min(0).lt(1).optional(),
    optim: OptimSchema.prefault({}),
    eval_every: positiveInt.default(250),
    checkpoint_every: positiveInt.default(500),
    log_every: positiveInt.default(25),
    /** A NaN or Inf loss or gradient: skip that step (counted in train/nonfinite_skipped) or stop the run. */
    on_nonfinite: z.enum(['skip', 'stop']).default('stop'),
    /**
     * Micro-batches per step (transformers' gradient_accumulation_steps, but batch_size stays the whole
     * step's batch): the batch's gradient is their weighted sum, the same as in one pass, with one
     * micro-batch's activations alive at a time. RL and GTA split whole prompt groups.
     */
    grad_accum_steps: positiveInt.default(1),
    /** Run each layer again in the backward instead of keeping its activations (transformers' gradient_checkpointing): less memory, one more forward of each layer (and on torch gta's own model leaves its fused native pass). */
    activation_checkpointing: z.boolean().default(false),
    /**
     * The checkpoints a run keeps under checkpoints/: `latest` (weights, AdamW moments and trainer
     * state, 12 bytes a parameter: what a resume continues from) and `best` (the best periodic eval's
     * weights, 4 bytes a parameter: what `gta eval --checkpoint best` scores). A run without `latest`
     * cannot be resumed: after a crash it starts again.
     */
    keep_checkpoints: z.array(z.enum(['latest', 'best'])).default(['latest', 'best']),
    /**
     * Stop when `patience` periodic dev evals in a row have not beaten the best eval's accuracy by more
     * than `min_delta` (transformers' EarlyStoppingCallback: early_stopping_patience, early_stopping_threshold).
     * The run then finishes as usual: its final eval and summary.json (with `stopped_early`).
     */
    early_stopping: z.object({ patience: positiveInt, min_delta: z.number().min(0).default(0) }).strict().optional(),
    /**
     * On the torch backend, where the CPU has AVX512-BF16 or AMX, or on a GPU (src/backend/torch/precision.ts):
     * bf16 runs matrix products in bfloat16 (float32 weights, moments, norms and losses: autocast's split,
     * Lightning's bf16-mixed); bf16-true holds the weights, AdamW moments and activations in bfloat16 as a
     * model loaded in torch.bfloat16 trains (Lightning's bf16-true), with stochastic rounding in the update
     * and log-probabilities in float32: half the memory of either.
     */
    precision: z.enum(['fp32', 'bf16', 'bf16-true']).default('fp32'),
    /**
     * Low-rank adapters (PEFT's LoraConfig, its defaults): only they train, the base weights stay frozen
     * (no gradients, no AdamW moments), and the KL term's reference is the base without them. Absent:
     * every weight trains.
     */
    lora: z
      .object({
        r: positiveInt.default(8),
        alpha: z.number().positive().default(8),
        /** On the adapters' input in SFT passes (the RL modes take none, as train.dropout). */
        dropout: z.number().min(0).lt(1).default(0),
        /** PEFT's module names (llama, qwen, mistral: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj; gpt2: c_attn c_proj c_fc; gta's own: wqkv wo w1 w2), or 'all-linear'; default PEFT's for the family (q_proj, v_proj; c_attn; wqkv). */
        target_modules: z.union([z.array(z.string()).min(1), z.literal('all-linear')]).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export const EvalSchema = z
  .object({
    split: z.enum(['dev', 'test']).default('dev'),
    batch_size: batchSize.default(64),
    max_new_tokens: positiveInt.default(12),
    /** Examples scored at each periodic eval during training (the final eval uses all). */
    max_examples_during_training: positiveInt.default(500),
    /**
     * After the final eval on the dev split, also score the test split once (a metrics line with split
     * 'test', summary.json's `test`): model choice and curves stay on dev, the reported number on test.
     */
    test_at_end: z.boolean().default(false),
    /**
     * The weights the final eval scores: `latest` (the last step's) or `best` (checkpoints/best, the best
     * periodic eval's; the last step's when no periodic eval ran). summary.json's final says which and its step.
     */
    final_checkpoint: z.enum(['latest', 'best']).default('latest'),
  })
  .strict();

/** Rollouts and GRPO, for modes rl and gta (DESIGN.md section 2; names follow TRL's GRPOConfig). */
export const RlSchema = z
  .object({
    /** G: completions sampled per prompt; train.batch_size counts completions, so G must divide it. */
    group_size: positiveInt.min(2).max(1024).default(8),
    decoding: z.enum(['structured', 'free']).default('structured'),
    temperature: z.number().positive().default(1.0),
    top_p: z.number().gt(0).max(1).default(1.0),
    /** Free-text tokens allowed inside <think>...</think> (structured decoding). */
    think_max_tokens: z.number().int().min(0).default(8),
    /** Length bound of a completion in free decoding. */
    max_completion_tokens: positiveInt.default(32),
    epsilon: z.number().positive().default(0.2),
    /** Upper clip (DAPO's clip-higher); defaults to epsilon. */
    epsilon_high: z.number().positive().optional(),
    /** KL coefficient against the frozen initial model (k3 estimator); 0 skips the reference model. */
    beta: z.number().min(0).default(0.0),
    /** Optimizer updates per generation batch (PPO-style reuse). */
    num_iterations: positiveInt.default(1),
    loss_type: z.enum(LOSS_TYPE_NAMES).default('grpo'),
    scale_rewards: z.enum(['group', 'batch', 'none']).default('group'),
    mask_truncated_completions: z.boolean().default(false),
    /**
     * The rewards, summed with their weights: a weight for each built-in (`{ accuracy: 1, format: 0.5 }`,
     * 1 by default), or a list of entries, built-ins by name and rewards of your own by module
     * (`[{ name: accuracy }, { name: ordinal, module: rewards/ordinal.mjs, weight: 0.5 }]`:
     * src/task/reward_plugins.ts). Either way the run uses the list.
     */
    rewards: z
      .union([
        z
          .array(
            z
              .object({
                name: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-" only (it names the reward/<name> metrics)'),
                weight: z.number().default(1.0),
                module: z.string().min(1).optional(),
              })
              .strict(),
          )
          .min(1),
        z.object(Object.fromEntries(REWARD_NAMES.map((name) => [name, z.number().default(1.0)])) as { [K in RewardName]: z.ZodDefault<z.ZodNumber> }).strict(),
      ])
      .prefault({})
      .transform((r): RewardSpec[] => (Array.isArray(r) ? r : Object.entries(r).map(([name, weight]) => ({ name, weight })))),
  })
  .strict()
  .superRefine((rl, ctx) => {
    rl.rewards.forEach((r, i) => {
      if (r.module === undefined && !isBuiltinReward(r.name)) {
        ctx.addIssue({ code: 'custom', path: ['rewards', i, 'name'], message: `'${r.name}' is not a built-in reward (${REWARD_NAMES.join(', ')}); give module: FILE for a reward of your own` });
      }
      if (r.module !== undefined && isBuiltinReward(r.name)) {
        ctx.addIssue({ code: 'custom', path: ['rewards', i, 'name'], message: `'${r.name}' is a built-in reward; name a reward from a module otherwise` });
      }
      if (rl.rewards.findIndex((o) => o.name === r.name) !== i) ctx.addIssue({ code: 'custom', path: ['rewards', i, 'name'], message: `reward '${r.name}' is named twice` });
    });
  });

/** The SFT phase of mode sft_then_rl; its target is `<think></think><answer>LABEL</answer>`, RL's format with an empty think. */
export const SftThenRlSchema = z.object({ sft_steps: positiveInt.default(200) }).strict();

/** The GTA hybrid: L = lambda_sft * L_SFT(guess) + lambda_rl * L_RL(think, answer). */
export const GtaSchema = z
  .object({
    lambda_sft: z.number().min(0).default(1.0),
    lambda_rl: z.number().min(0).default(1.0),
    gradient_constraint: z.enum(['drop_sft_on_conflict', 'pcgrad', 'none']).default('drop_sft_on_conflict'),
    /**
     * How the guess learns: cross_entropy on the gold label (the paper's GTA), or rl: the guess's tokens
     * are in the RL loss with think and answer and there is no L_SFT (the paper's "GTA(RL)" ablation;
     * lambda_sft and the constraint then have nothing to act on).
     */
    guess_loss: z.enum(['cross_entropy', 'rl']).default('cross_entropy'),
  })
  .strict()
  // with one loss lambda_rl would only rescale the gradient (which AdamW undoes): refused, not silently ignored
  .refine((g) => g.guess_loss !== 'rl' || g.lambda_rl === 1, {
    path: ['lambda_rl'],
    message: 'with gta.guess_loss rl there is no L_SFT to weigh L_RL against: leave lambda_rl at 1 (the learning rate sets the step)',
  });

export const TrainConfigSchema = z
  .object({
    name: runName.default('run'),
    /** What a comparison calls this run (compare-baselines sets it to the run's arm); default: the mode. */
    arm: runName.optional(),
    seed: z.number().int().default(1),
    backend: z.enum(BACKEND_NAMES).default('auto'),
    mode: z.enum(MODES).default('sft'),
    output_dir: z.string().default('runs'),
    /**
     * A base checkpoint folder (from `gta pretrain`), a local Hugging Face model folder (GPT-2, Llama,
     * Mistral, Qwen2, Qwen3: src/model/hf_model.ts), a hub id found in the local Hugging Face cache
     * (`Qwen/Qwen2.5-0.5B`: src/model/hf_cache.ts), or "scratch" to start from random weights.
     */
    init: z.string().default('checkpoints/base'),
    /** Used only when init is "scratch"; otherwise the checkpoint's or model's own architecture is used. */
    model: ModelArchSchema.prefault({}),
    data: DataSchema,
    /** The prompt: {text} is replaced by the example's text; with chat, as the user's message of the model's chat template (src/task/chat.ts). */
    // bounded: every example's prompt is built from it (a 50 MB template once got as far as tokenizing)
    prompt: z.object({ template: z.string().max(100_000).includes('{text}').default('{text}'), chat: z.boolean().default(false) }).strict().prefault({}),
    train: TrainSchema.prefault({}),
    eval: EvalSchema.prefault({}),
    rl: RlSchema.prefault({}),
    gta: GtaSchema.prefault({}),
    sft_then_rl: SftThenRlSchema.prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (!MODE_TRAITS[c.mode].dropout && c.train.dropout) {
      ctx.addIssue({
        code: 'custom',
        path: ['train', 'dropout'],
        message: `mode ${c.mode} trains without dropout (its rollouts and RL passes run the model as it samples); set train.dropout to 0 or leave it out`,
      });
    }
    if (!MODE_TRAITS[c.mode].dropout && c.train.lora?.dropout) {
      ctx.addIssue({ code: 'custom', path: ['train', 'lora', 'dropout'], message: `mode ${c.mode} trains without dropout (its RL passes run the model as it samples); set train.lora.dropout to 0 or leave it out` });
    }
    if (c.eval.final_checkpoint === 'best' && !c.train.keep_checkpoints.includes('best')) {
      ctx.addIssue({ code: 'custom', path: ['eval', 'final_checkpoint'], message: "eval.final_checkpoint 'best' scores checkpoints/best, which train.keep_checkpoints does not keep; add best to it or use 'latest'" });
    }
    const units = MODE_TRAITS[c.mode].grouped ? c.train.batch_size / c.rl.group_size : c.train.batch_size;
    if (c.train.batch_size >= 1 && c.train.grad_accum_steps > Math.floor(units)) {
      ctx.addIssue({
        code: 'custom',
        path: ['train', 'grad_accum_steps'],
        message: `train.grad_accum_steps ${c.train.grad_accum_steps} is more than the ${Math.floor(units)} ${MODE_TRAITS[c.mode].grouped ? 'prompts' : 'examples'} of a batch (train.batch_size ${c.train.batch_size}${MODE_TRAITS[c.mode].grouped ? ` / rl.group_size ${c.rl.group_size}` : ''}): each micro-batch needs at least one`,
      });
    }
    if (MODE_TRAITS[c.mode].grouped && c.train.batch_size % c.rl.group_size !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['train', 'batch_size'],
        message: `train.batch_size ${c.train.batch_size} is not a multiple of rl.group_size ${c.rl.group_size} (each prompt gets group_size completions)`,
      });
    }
  })
  // train.dropout's default by mode (so the resolved config states the value a run used)
  .transform((c) => ({ ...c, train: { ...c.train, dropout: c.train.dropout ?? (MODE_TRAITS[c.mode].dropout ? 0.1 : 0) } }));

export const PretrainConfigSchema = z
  .object({
    name: runName.default('pretrain'),
    seed: z.number().int().default(1),
    backend: z.enum(BACKEND_NAMES).default('auto'),
    /** Built-in datasets whose training split (never dev or test) is the corpus. */
    corpus: z.array(z.string()).min(1),
    /** A corpus file written by `gta corpus build` (one text per line, benchmark dev and test text removed), added to the training text. */
    corpus_file: z.string().optional(),
    /** Where the base checkpoint is written. */
    output: z.string().default('checkpoints/base'),
    model: ModelArchSchema.prefault({}),
    /** Same carve as train configs use, so carved dev text stays out of the LM corpus. */
    dev_fraction: z.number().gt(0).lt(1).default(0.1),
    split_seed: z.number().int().default(0),
    train: z
      .object({
        steps: positiveInt.default(3000),
        batch_size: positiveInt.default(32),
        seq_len: positiveInt.default(64),
        dropout: z.number().min(0).lt(1).default(0.0),
        optim: OptimSchema.prefault({}),
        log_every: positiveInt.default(50),
        /** Held-out perplexity is measured on this many sequences from the corpora's dev splits. */
        eval_sequences: positiveInt.default(64),
        eval_every: positiveInt.default(500),
        checkpoint_every: positiveInt.default(500),
        on_nonfinite: z.enum(['skip', 'stop']).default('stop'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/** A sweep's arms when it names none: each mode on its own config. */
const DEFAULT_SWEEP_MODES: readonly Mode[] = ['sft', 'rl', 'gta'];

/** One arm of a sweep: a mode on a run config, with its own overrides (e.g. an ablation). */
const ArmSchema = z
  .object({
    name: runName,
    mode: z.enum(MODES),
    /** The arm's run config; {dataset} and {mode} are filled in (default: the sweep's config_template). */
    config_template: z.string().optional(),
    /** Overrides for this arm's runs, applied after the sweep's `set`. */
    set: z.array(z.string()).default([]),
  })
  .strict();
type Arm = z.infer<typeof ArmSchema>;

/**
 * A sweep for `gta compare-baselines`: every (dataset, arm, seed) is an ordinary run. `modes: [sft, rl,
 * gta]` is shorthand for arms named after their modes; `arms` names variants of a mode (matched
 * budgets, ablations), and `pairs` says which arms the paired statistics compare.
 */
export const CompareConfigSchema = z
  .object({
    name: runName,
    /** Where the sweep's runs, tables, curves and report go (default runs/<name>). */
    output_dir: z.string().optional(),
    datasets: z.array(z.string()).min(1),
    modes: z.array(z.enum(MODES)).min(1).optional(),
    arms: z.array(ArmSchema).min(1).optional(),
    /** Paired differences to report, as [a, b] for a minus b (default: gta-sft, gta-rl, rl-sft where those arms exist). */
    pairs: z.array(z.tuple([runName, runName])).min(1).optional(),
    seeds: z.array(z.number().int()).min(1).default([1, 2, 3]),
    jobs: positiveInt.default(2),
    /** The run config of each cell; {dataset} and {mode} are filled in. */
    config_template: z.string().default('configs/{dataset}-{mode}.yaml'),
    /** Overrides applied to every run (as with --set), e.g. ["train.steps=200"]. */
    set: z.array(z.string()).default([]),
    /** "Steps to threshold" uses fraction x the best arm's final mean accuracy, or an absolute accuracy. */
    threshold: z
      .object({ fraction: z.number().gt(0).max(1).default(0.95), absolute: z.number().gt(0).max(1).optional() })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.modes && c.arms) ctx.addIssue({ code: 'custom', path: ['modes'], message: 'give modes or arms, not both (modes: [m] is arms: [{ name: m, mode: m }])' });
    const names = (c.arms ?? []).map((a) => a.name);
    names.forEach((n, i) => {
      if (names.indexOf(n) !== i) ctx.addIssue({ code: 'custom', path: ['arms', i, 'name'], message: `arm '${n}' is named twice` });
    });
    const known: readonly string[] = c.arms ? names : (c.modes ?? DEFAULT_SWEEP_MODES);
    (c.pairs ?? []).forEach((p, i) => {
      p.forEach((n, j) => {
        if (!known.includes(n)) ctx.addIssue({ code: 'custom', path: ['pairs', i, j], message: `'${n}' is not an arm of this sweep (${known.join(', ')})` });
      });
      if (p[0] === p[1]) ctx.addIssue({ code: 'custom', path: ['pairs', i], message: `a pair compares two different arms, got '${p[0]}' twice` });
    });
  })
  // one shape for the runner: every sweep as arms
  .transform(({ modes, arms, ...c }) => ({ ...c, arms: arms ?? (modes ?? DEFAULT_SWEEP_MODES).map((m): Arm => ({ name: m, mode: m, set: [] })) }));

export type CompareConfig = z.infer<typeof CompareConfigSchema>;
export type ModelArch = z.infer<typeof ModelArchSchema>;
export type DataConfig = z.infer<typeof DataSchema>;
export type OptimConfig = z.infer<typeof OptimSchema>;
export type TrainConfig = z.infer<typeof TrainConfigSchema>;
export type RlConfig = z.infer<typeof RlSchema>;
export type GtaConfig = z.infer<typeof GtaSchema>;
export type PretrainConfig = z.infer<typeof PretrainConfigSchema>;
