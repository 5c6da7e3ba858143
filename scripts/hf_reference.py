#!/usr/bin/env python3
"""Python references for gta at real Hugging Face model sizes: the same SFT step in transformers, the same
GRPO-style step in TRL, the same tokenization in `tokenizers`, each on a model folder as save_pretrained
writes it (config.json, *.safetensors, tokenizer.json). A benchmark spawns it as a child process
(`$PYTHON scripts/hf_reference.py SUBCOMMAND ...`) and reads the one JSON line it prints on stdout;
everything else (library warnings, Trainer logs, errors) goes to stderr, the last line of which is a
one-line reason when it fails. Python is no dependency of npm ci, npm test or CI; set it up by hand:

    python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install torch transformers trl peft datasets tokenizers safetensors accelerate
    PYTHON=/tmp/hfvenv/bin/python

Subcommands:

  hf_reference.py sft --model DIR --batch FILE [--steps 3 --lr 1e-5 --threads 2 --dtype float32 --grad-checkpointing --vocab N]
      FILE: {"sequences": [[id, ...], ...], "prompt_lengths": [n, ...]}, each sequence its prompt's
      tokens then its target's. One batch, left-padded (pad id: the config's pad_token_id, else its
      eos_token_id; attention_mask 0 on padding; position_ids cumsum(mask) - 1, clipped at 0, as
      transformers makes them for left padding); labels = input_ids with -100 on padding and prompt
      tokens, so the loss transformers computes (labels shifted one left inside the model) is the mean
      cross-entropy over the target tokens, each predicted from the position before it. Per step:
      zero_grad(set_to_none=True), forward, backward, torch.optim.AdamW(lr, weight_decay=0) step; no
      gradient clipping, model.train() with dropout as the config sets it. Prints
      {"what": "transformers sft", "step_s": [...], "loss": [...] (before each step's update), "params",
      "peak_rss_bytes", "rss_after_load_bytes", versions, ...}.

  hf_reference.py grpo --model DIR --prompts FILE [--steps 2 --group 8 --max-new 13 --threads 2 --lr 1e-6 --beta 0 --dtype float32 --lora-r 0]
      FILE: {"prompts": ["text", ...], "labels": ["positive", ...]}. TRL's GRPOTrainer on the CPU: every
      optimizer step samples --group completions (temperature 1, at most --max-new tokens, stopping at
      EOS) for each of the P prompts of FILE, rewards each 1.0 when it contains its row's label and 0.0
      otherwise, and takes one update on all P x group of them (see grpo() for the batch settings). With
      --lora-r R > 0 it trains LoRA adapters (r R, alpha 2R, every attention and MLP projection) instead
      of the full model. Prints {"what": "trl grpo", "step_s": [...] (generation included),
      "generate_and_score_s": [...] (the sampling and reward part of each step), "completions_per_step": [...],
      "log": [TRL's logged metrics per step: loss, completion lengths, rewards, ...], "params", "trainable_params",
      "peak_rss_bytes", "rss_after_load_bytes", versions, ...}.

  hf_reference.py tokenize --tokenizer FILE --texts FILE [--split-special-tokens]
      Encodes each text of FILE (a JSON list of strings, or {"texts": [...]}) with `tokenizers`'
      Tokenizer.from_file(tokenizer.json), add_special_tokens=False. --split-special-tokens encodes a
      special token's text as ordinary characters (transformers' split_special_tokens=True, what gta
      does). Prints {"tokenizers": version, "ids": [[...], ...]}.

Timing is wall time (time.perf_counter) per optimizer step; peak_rss_bytes is getrusage's ru_maxrss
(the whole run's high-water mark, loading included), rss_after_load_bytes VmRSS right after the model
is loaded. Exit status: 0 on success; 2 with a one-line note on stderr for a bad argument or input file;
3 when a needed package (torch, transformers, trl, ...) is missing for this python, so a caller can try
another one (as with scripts/torch_reference.py); anything else is a failure inside the libraries.
Hub access is switched off (HF_HUB_OFFLINE=1): DIR must be a local folder.
"""
import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no extra threads beyond --threads

PROG = "hf_reference"
DTYPES = ("float32", "bfloat16")
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def fail(msg, status=2):
    print(f"{PROG}: {msg}", file=sys.stderr)
    sys.exit(status)


def need(*names):
    """Imports the named packages, or exits 3 naming the first one missing."""
    import importlib
    mods = []
    for name in names:
        try:
            mods.append(importlib.import_module(name))
        except ImportError as e:
            fail(f"{name} is not installed for {sys.executable} ({e})", 3)
    return mods


def read_json(path, what):
    if not os.path.isfile(path):
        fail(f"{what} {path}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        fail(f"{what} {path}: not readable JSON ({e})")


def model_dir(path):
    if not os.path.isdir(path):
        fail(f"--model {path}: no such folder")
    if not os.path.isfile(os.path.join(path, "config.json")):
        fail(f"--model {path}: no config.json there (not a save_pretrained folder)")
    return path


def rss_bytes():
    """Current resident set size (VmRSS), or None where /proc is missing."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return None


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


class JsonOut:
    """Keeps the real stdout for the one JSON line and points file descriptor 1 (and sys.stdout) at
    stderr, so that whatever the libraries print, from Python or C, cannot corrupt the result."""

    def __init__(self):
        sys.stdout.flush()
        self.fd = os.dup(1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr

    def emit(self, obj):
        sys.stderr.flush()
        os.write(self.fd, (json.dumps(obj) + "\n").encode())


def positive_int(name, v, minimum=1):
    if v < minimum:
        fail(f"{name} must be at least {minimum} (got {v})")


def load_model(torch, transformers, path, dtype):
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    except (OSError, ValueError, KeyError) as e:
        fail(f"--model {path}: transformers cannot load it ({str(e).splitlines()[0] if str(e) else type(e).__name__})")
    return model


def versions(**mods):
    return {name: m.__version__ for name, m in mods.items()} | {"python": platform.python_version()}


def sft(argv):
    p = argparse.ArgumentParser(prog=f"{PROG}.py sft", description=(
        "Time transformers' SFT step (left-padded batch, loss on the target tokens, AdamW) on a save_pretrained folder."))
    p.add_argument("--model", required=True, help="a save_pretrained folder (config.json, safetensors)")
    p.add_argument("--batch", required=True, help='JSON {"sequences": [[id, ...], ...], "prompt_lengths": [n, ...]}')
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="weights, activations and optimizer state (default float32)")
    p.add_argument("--grad-checkpointing", action="store_true", help="recompute each layer's activations in backward")
    p.add_argument("--vocab", type=int, default=0, help="resize the embedding (and an untied head) to this many rows first, "
                   "as gta adds its six structure tags after the model's vocabulary (0: as loaded)")
    a = p.parse_args(argv)
    positive_int("--steps", a.steps)
    positive_int("--threads", a.threads)
    model_dir(a.model)
    batch = read_json(a.batch, "--batch")
    seqs, plens = (batch.get("sequences"), batch.get("prompt_lengths")) if isinstance(batch, dict) else (None, None)
    if not isinstance(seqs, list) or not seqs or not isinstance(plens, list):
        fail(f'--batch {a.batch}: want {{"sequences": [[id, ...], ...], "prompt_lengths": [n, ...]}} with at least one sequence')
    if len(plens) != len(seqs):
        fail(f"--batch {a.batch}: {len(seqs)} sequences but {len(plens)} prompt_lengths")
    for i, (s, n) in enumerate(zip(seqs, plens)):
        if not isinstance(s, list) or not all(isinstance(t, int) and t >= 0 for t in s):
            fail(f"--batch {a.batch}: sequence {i} is not a list of token ids")
        if not isinstance(n, int) or not 1 <= n < len(s):
            fail(f"--batch {a.batch}: sequence {i} has {len(s)} tokens and prompt length {n}; "
                 "want at least one prompt token (the first target is predicted from the last one) and one target token")

    torch, transformers = need("torch", "transformers")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = load_model(torch, transformers, a.model, a.dtype)
    rss_after_load = rss_bytes()
    cfg = model.config
    if a.vocab > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(a.vocab, mean_resizing=False)
    vocab = model.get_input_embeddings().num_embeddings
    top = max(max(s) for s in seqs)
    if top >= vocab:
        fail(f"--batch {a.batch}: token id {top} is past the model's {vocab} embeddings")
    pad = cfg.pad_token_id if cfg.pad_token_id is not None else cfg.eos_token_id
    if isinstance(pad, (list, tuple)):
        pad = pad[0]
    if pad is None:
        fail(f"--model {a.model}: config.json has neither pad_token_id nor eos_token_id to pad with")

    B, T = len(seqs), max(len(s) for s in seqs)
    input_ids = torch.full((B, T), pad, dtype=torch.long)
    attention_mask = torch.zeros((B, T), dtype=torch.long)
    labels = torch.full((B, T), -100, dtype=torch.long)
    for b, (s, n) in enumerate(zip(seqs, plens)):
        off = T - len(s)
        input_ids[b, off:] = torch.tensor(s)
        attention_mask[b, off:] = 1
        labels[b, off + n:] = torch.tensor(s[n:])  # targets; the model shifts: label i is predicted at i - 1
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    target_tokens = int((labels != -100).sum())

    if a.grad_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    step_s, losses = [], []
    for i in range(a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, labels=labels, use_cache=False)
        out.loss.backward()
        opt.step()
        step_s.append(time.perf_counter() - t0)
        losses.append(out.loss.item())
        print(f"sft step {i + 1}/{a.steps}: {step_s[-1]:.3f} s, loss {losses[-1]:.4f}", file=sys.stderr)
    return {
        "what": "transformers sft",
        **versions(torch=torch, transformers=transformers),
        "threads": torch.get_num_threads(),
        "dtype": a.dtype,
        "model_type": cfg.model_type,
        "attn_implementation": getattr(cfg, "_attn_implementation", None),
        "grad_checkpointing": a.grad_checkpointing,
        "params": sum(q.numel() for q in model.parameters()),
        "batch": B,
        "seq_len": T,
        "tokens": sum(len(s) for s in seqs),
        "target_tokens": target_tokens,
        "lr": a.lr,
        "step_s": step_s,
        "loss": losses,
        "peak_rss_bytes": peak_rss_bytes(),
        "rss_after_load_bytes": rss_after_load,
    }


def grpo(argv):
    p = argparse.ArgumentParser(prog=f"{PROG}.py grpo", description=(
        "Time TRL's GRPOTrainer (sampling included) on a save_pretrained folder: one optimizer step per P prompts x group completions."))
    p.add_argument("--model", required=True, help="a save_pretrained folder with its tokenizer (tokenizer.json, tokenizer_config.json)")
    p.add_argument("--prompts", required=True, help='JSON {"prompts": ["text", ...], "labels": ["positive", ...]}')
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--group", type=int, default=8, help="completions per prompt (num_generations; at least 2)")
    p.add_argument("--max-new", type=int, default=13, help="most tokens per completion (max_completion_length)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-6)
    p.add_argument("--beta", type=float, default=0.0, help="KL coefficient; above 0 TRL keeps a reference model (another copy of the weights)")
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="bfloat16: weights loaded in bfloat16 and bf16=True (autocast)")
    p.add_argument("--lora-r", type=int, default=0, help="LoRA rank; 0 trains every weight")
    p.add_argument("--grad-checkpointing", action="store_true", help="TRL turns it on by default; here it is off unless given")
    a = p.parse_args(argv)
    positive_int("--steps", a.steps)
    positive_int("--group", a.group, 2)
    positive_int("--max-new", a.max_new)
    positive_int("--threads", a.threads)
    positive_int("--lora-r", a.lora_r, 0)
    model_dir(a.model)
    data = read_json(a.prompts, "--prompts")
    prompts, labels = (data.get("prompts"), data.get("labels")) if isinstance(data, dict) else (None, None)
    if not isinstance(prompts, list) or not prompts or not all(isinstance(t, str) for t in prompts):
        fail(f'--prompts {a.prompts}: want {{"prompts": ["text", ...], "labels": ["label", ...]}} with at least one prompt')
    if not isinstance(labels, list) or len(labels) != len(prompts) or not all(isinstance(t, str) for t in labels):
        fail(f"--prompts {a.prompts}: want one label (a string) per prompt ({len(prompts)} prompts)")

    if not any(os.path.isfile(os.path.join(a.model, f)) for f in ("tokenizer.json", "tokenizer.model", "vocab.json")):
        # transformers 5 would otherwise build an empty tokenizer from config.json alone
        fail(f"--model {a.model}: no tokenizer files there (tokenizer.json, tokenizer.model or vocab.json)")
    torch, transformers, trl, datasets = need("torch", "transformers", "trl", "datasets")
    peft = need("peft")[0] if a.lora_r else None
    torch.set_num_threads(a.threads)
    try:
        tok = transformers.AutoTokenizer.from_pretrained(a.model)
    except (OSError, ValueError) as e:
        fail(f"--model {a.model}: no tokenizer transformers can load there ({str(e).splitlines()[0] if str(e) else type(e).__name__})")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    model = load_model(torch, transformers, a.model, a.dtype)
    rss_after_load = rss_bytes()
    params = sum(q.numel() for q in model.parameters())

    completions_per_step = []

    def label_reward(completions, label, **kwargs):
        """1.0 when the completion contains its row's label (the dataset's "label" column), else 0.0."""
        completions_per_step.append(len(completions))
        return [1.0 if lab in c else 0.0 for c, lab in zip(completions, label)]

    class StepTimer(transformers.TrainerCallback):
        """Wall time from on_step_begin to on_step_end. In transformers' Trainer (_inner_training_loop) the
        interval holds training_step and then the gradient clipping, optimizer.step() and zero_grad; only the
        dataloader's next() (which yields the prompt rows, nothing more) comes before on_step_begin. TRL's
        GRPOTrainer.training_step calls _prepare_inputs, which (every steps_per_generation * num_iterations
        micro-steps: here every step) runs _generate_and_score_completions: model.generate with a KV cache,
        decoding, the reward function, advantages. So each interval is a whole step: sampling, rewards,
        the policy forward and backward, the update."""

        def __init__(self):
            self.step_s, self.spans, self.threads, self.rss, self.log = [], [], [], [], []

        def on_step_begin(self, args, state, control, **kw):
            self.threads.append(torch.get_num_threads())
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            t1 = time.perf_counter()
            self.step_s.append(t1 - self.t0)
            self.spans.append((self.t0, t1))
            self.rss.append(rss_bytes())
            print(f"grpo step {len(self.step_s)}/{a.steps}: {self.step_s[-1]:.3f} s", file=sys.stderr)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:  # the per-step training log, not the final train_runtime summary
                self.log.append({k: v for k, v in logs.items() if isinstance(v, (int, float))})

    P = len(prompts)
    timer = StepTimer()
    with tempfile.TemporaryDirectory(prefix="hf_reference_grpo_") as out_dir:
        # Batch semantics (TRL 1.x GRPOConfig.__post_init__ and GRPOTrainer): per_device_train_batch_size
        # counts completions, not prompts. One optimizer step consumes per_device_train_batch_size *
        # num_processes * gradient_accumulation_steps completions; generation_batch_size (completions
        # sampled per generation) defaults to per_device_train_batch_size * num_processes *
        # steps_per_generation, with steps_per_generation defaulting to gradient_accumulation_steps, i.e.
        # one generation per optimizer step; the sampler (RepeatSampler) draws generation_batch_size /
        # num_generations distinct prompts and repeats each num_generations times. Here: one process,
        # per_device_train_batch_size = P * group, gradient_accumulation_steps = 1 (so steps_per_generation
        # = 1, generation_batch_size = P * group): each step samples group completions for each of the P
        # prompts in one generate() call and trains on all of them in one forward/backward. With
        # num_iterations = 1 and steps_per_generation dividing gradient_accumulation_steps, TRL skips the
        # extra no-grad pass for the old policy's log-probs (the ratio is 1, detached); with beta = 0 it
        # loads no reference model.
        cfg = trl.GRPOConfig(
            output_dir=out_dir,
            use_cpu=True,
            bf16=a.dtype == "bfloat16",  # TRL's default is True; off for float32
            fp16=False,
            gradient_checkpointing=a.grad_checkpointing,  # TRL's default is True
            report_to=[],
            save_strategy="no",
            logging_steps=1,
            disable_tqdm=True,
            max_steps=a.steps,
            per_device_train_batch_size=P * a.group,
            gradient_accumulation_steps=1,
            num_generations=a.group,
            max_completion_length=a.max_new,
            num_iterations=1,
            beta=a.beta,
            temperature=1.0,
            learning_rate=a.lr,
            lr_scheduler_type="constant",  # the default (linear decay to 0 over max_steps) would change lr per step
            dataloader_num_workers=0,
            seed=0,
        )
        dataset = datasets.Dataset.from_dict({"prompt": prompts, "label": labels})
        peft_config = None
        if a.lora_r:
            peft_config = peft.LoraConfig(r=a.lora_r, lora_alpha=2 * a.lora_r, lora_dropout=0.0, target_modules=LORA_TARGETS, task_type="CAUSAL_LM")
        trainer = trl.GRPOTrainer(model=model, reward_funcs=[label_reward], args=cfg, train_dataset=dataset,
                                  processing_class=tok, peft_config=peft_config, callbacks=[timer])
        trainable = sum(q.numel() for q in trainer.model.parameters() if q.requires_grad)
        # Times sampling + scoring on its own as well (and checks that it falls inside the timed steps).
        gen_spans, generate_and_score = [], trainer._generate_and_score_completions

        def timed_generate_and_score(*args, **kwargs):
            t0 = time.perf_counter()
            result = generate_and_score(*args, **kwargs)
            gen_spans.append((t0, time.perf_counter()))
            return result

        trainer._generate_and_score_completions = timed_generate_and_score
        trainer.train()
    if len(timer.step_s) != a.steps:
        fail(f"TRL ran {len(timer.step_s)} optimizer steps, not {a.steps}", 1)
    if len(gen_spans) != a.steps or not all(b0 <= g0 and g1 <= b1 for (g0, g1), (b0, b1) in zip(gen_spans, timer.spans)):
        fail(f"TRL generated {len(gen_spans)} times over {a.steps} steps, not once inside each timed step", 1)
    return {
        "what": "trl grpo",
        **versions(torch=torch, transformers=transformers, trl=trl) | ({"peft": peft.__version__} if peft else {}),
        "threads": a.threads,
        "threads_in_steps": timer.threads,
        "dtype": a.dtype,
        "model_type": model.config.model_type,
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "grad_checkpointing": a.grad_checkpointing,
        "params": params,
        "trainable_params": trainable,
        "lora_r": a.lora_r,
        "prompts": P,
        "group": a.group,
        "max_new": a.max_new,
        "batch_settings": {"per_device_train_batch_size": cfg.per_device_train_batch_size, "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
                           "steps_per_generation": cfg.steps_per_generation, "generation_batch_size": cfg.generation_batch_size},
        "loss_settings": {"loss_type": cfg.loss_type, "beta": cfg.beta, "epsilon": cfg.epsilon, "scale_rewards": cfg.scale_rewards,
                          "max_grad_norm": cfg.max_grad_norm, "lr": cfg.learning_rate, "lr_scheduler_type": getattr(cfg.lr_scheduler_type, "value", cfg.lr_scheduler_type)},
        "completions_per_step": completions_per_step,
        "step_s": timer.step_s,
        "generate_and_score_s": [g1 - g0 for g0, g1 in gen_spans],
        "log": timer.log,
        "rss_after_step_bytes": timer.rss,
        "peak_rss_bytes": peak_rss_bytes(),
        "rss_after_load_bytes": rss_after_load,
    }


def tokenize(argv):
    p = argparse.ArgumentParser(prog=f"{PROG}.py tokenize", description="Encode texts with the tokenizers package (add_special_tokens=False).")
    p.add_argument("--tokenizer", required=True, help="a tokenizer.json")
    p.add_argument("--texts", required=True, help='JSON: a list of strings, or {"texts": [...]}')
    p.add_argument("--split-special-tokens", action="store_true", help="encode special tokens' text as ordinary text (encode_special_tokens)")
    a = p.parse_args(argv)
    texts = read_json(a.texts, "--texts")
    if isinstance(texts, dict):
        texts = texts.get("texts")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        fail(f'--texts {a.texts}: want a JSON list of strings or {{"texts": [...]}}')
    if not os.path.isfile(a.tokenizer):
        fail(f"--tokenizer {a.tokenizer}: no such file")
    (tokenizers,) = need("tokenizers")
    try:
        tok = tokenizers.Tokenizer.from_file(a.tokenizer)
    except Exception as e:  # tokenizers raises its own Exception subclass for malformed files
        fail(f"--tokenizer {a.tokenizer}: not a tokenizer.json the tokenizers package can read ({str(e).splitlines()[0] if str(e) else type(e).__name__})")
    if a.split_special_tokens:
        tok.encode_special_tokens = True
    return {"tokenizers": tokenizers.__version__, "split_special_tokens": a.split_special_tokens,
            "ids": [tok.encode(t, add_special_tokens=False).ids for t in texts]}


COMMANDS = {"sft": sft, "grpo": grpo, "tokenize": tokenize}


def main():
    args = sys.argv[1:]
    if not args or args[0] not in COMMANDS:
        if args[:1] in (["-h"], ["--help"]):
            print(__doc__)
            return
        fail(f"want a subcommand, one of {', '.join(COMMANDS)} (got {args[0] if args else 'none'}); --help for usage")
    if any(x in ("-h", "--help") for x in args[1:]):
        COMMANDS[args[0]](args[1:])  # argparse prints the help on stdout and exits 0
        return
    out = JsonOut()
    out.emit(COMMANDS[args[0]](args[1:]))


if __name__ == "__main__":
    main()
