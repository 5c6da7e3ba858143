#!/usr/bin/env python3
"""PyTorch reference for gta: the same model as src/model/transformer.ts, in eager fp32 PyTorch.

Three uses, one model definition (`Transformer` below):

  torch_reference.py [bench] [--batch N --seq T ...]
      scripts/bench.ts's `lm` measurement (the default when no subcommand is given, which is how
      bench.ts calls it): the same training step on random tokens, timed.
  torch_reference.py rl [--prompts-file F | --prompts P --prompt-len T] [--group G --new-tokens N ...]
      scripts/bench.ts's `rl` measurement: one GRPO step (sampling rollout with a KV cache, then the
      clipped-surrogate update, backward and AdamW), timed; see rl() for what exactly.
  torch_reference.py parity --checkpoint DIR --case DIR
      test/torch_parity.test.ts's outside check: loads a gta checkpoint, recomputes what the test
      wrote to the case folder (logits, SFT loss, gradients, parameters after one AdamW step) and
      compares them with gta's.

Model (as src/model/transformer.ts): decoder-only, pre-norm; learned token and position embeddings;
per block LN -> causal multi-head attention (fused qkv projection with bias, output projection with
bias; additive attention bias) -> residual, LN -> ReLU MLP -> residual; final LN; output head tied to
the token embedding. Parameter names are gta's (Transformer.shapes), so a checkpoint's
model.safetensors loads with load_state_dict. No dropout. Optimizer: AdamW (decay on matrices only,
as src/train/adamw.ts) after global grad-norm clipping.

bench: loss is the mean cross-entropy at every position after the first (src/train/sft.ts with a
1-token prompt); AdamW lr 1e-4, clipping at 1.0. Tokens counted per step = batch * seq, the
definition bench.ts uses (sftStep's `tokens` counts every token of every sequence, including the
first, which has no loss). Prints one JSON line on stdout.

parity: prints one JSON line on stdout (per quantity the max abs difference, and the max of
|gta - torch| / max(1, |torch|), which the tolerance applies to); exits 1 with a message on stderr
naming the worst quantity and tensor when one exceeds the tolerance.

All exit with status 3 and a one-line note on stderr if torch is missing, so callers can try
another python. Runs on torch 1.13 (Debian's python3-torch) and 2.x alike: no torch.compile, no
SDPA, no numpy, no safetensors package.
"""
import argparse
import json
import math
import os
import struct
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:
    print(f"torch_reference: PyTorch is not installed for {sys.executable} ({e})", file=sys.stderr)
    sys.exit(3)

NEG_INF = -1e9  # src/model/transformer.ts NEG_INF: the additive bias of a hidden key


def _param(*shape, std=None, fill=None):
    """N(0, std) when std is given, else a constant (0 unless fill)."""
    if std:
        return torch.nn.Parameter(torch.randn(*shape) * std)
    return torch.nn.Parameter(torch.full(shape, float(fill)) if fill is not None else torch.zeros(*shape))


class _LayerNorm(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.g, self.b = _param(d, fill=1.0), _param(d)

    def forward(self, x):
        return F.layer_norm(x, x.shape[-1:], self.g, self.b, 1e-5)


class _Block(torch.nn.Module):
    def __init__(self, d, ff, resid):
        super().__init__()
        self.ln1 = _LayerNorm(d)
        self.attn = torch.nn.Module()
        self.attn.wqkv, self.attn.bqkv = _param(d, 3 * d, std=0.02), _param(3 * d)
        self.attn.wo, self.attn.bo = _param(d, d, std=resid), _param(d)
        self.ln2 = _LayerNorm(d)
        self.mlp = torch.nn.Module()
        self.mlp.w1, self.mlp.b1 = _param(d, ff, std=0.02), _param(ff)
        self.mlp.w2, self.mlp.b2 = _param(ff, d, std=resid), _param(d)


class Transformer(torch.nn.Module):
    """src/model/transformer.ts; named_parameters() gives gta's names (tok_emb, blocks.0.attn.wqkv, ln_f.g, ...)."""

    def __init__(self, V, d, L, H, ff, S):
        super().__init__()
        self.H = H
        resid = 0.02 / math.sqrt(2 * L)  # same init as Transformer.init (irrelevant to speed and to parity, which loads weights)
        self.tok_emb = _param(V, d, std=0.02)
        self.pos_emb = _param(S, d, std=0.01)
        self.blocks = torch.nn.ModuleList(_Block(d, ff, resid) for _ in range(L))
        self.ln_f = _LayerNorm(d)

    @classmethod
    def from_arch(cls, arch):
        """From a checkpoint's config.json `arch` (src/config/schema.ts ModelArch)."""
        return cls(arch["vocab_size"], arch["d_model"], arch["n_layers"], arch["n_heads"], arch["d_ff"], arch["max_seq_len"])

    def forward(self, ids, positions=None, bias=None, cache=None, start=0):
        """Hidden states after the final LN, [B, T, d]. positions [B, T] (default 0..T-1 in every row);
        bias: additive attention bias broadcastable to [B, H, T, T] (default causal).

        Incremental (KV cache) path: `cache` is a list of (K, V) per block, each a preallocated
        [B, H, S, dh] buffer (new_cache); this call's keys and values are written at columns
        start..start+T-1 and the queries attend over columns 0..start+T-1, so `bias` must be given,
        broadcastable to [B, H, T, start+T]. Without `cache` the computation is exactly the
        full-sequence one (the parity test's)."""
        B, T = ids.shape
        d = self.tok_emb.shape[1]
        H, dh = self.H, d // self.H
        x = self.tok_emb[ids] + (self.pos_emb[:T] if positions is None else self.pos_emb[positions])
        if bias is None:
            # causal, like src/model/batch.ts without padding (0 where key <= query, NEG_INF elsewhere)
            bias = torch.full((T, T), NEG_INF, device=ids.device).triu(1)
        if bias is None and cache is not None:
            raise ValueError("forward with a cache needs an explicit bias")
        for i, b in enumerate(self.blocks):
            h = b.ln1(x)
            q, k, v = (h @ b.attn.wqkv + b.attn.bqkv).split(d, dim=-1)
            q, k, v = (t.reshape(B, T, H, dh).transpose(1, 2) for t in (q, k, v))
            if cache is not None:
                K, V = cache[i]
                K[:, :, start:start + T] = k
                V[:, :, start:start + T] = v
                k, v = K[:, :, :start + T], V[:, :, :start + T]
            att = torch.softmax((q @ k.transpose(-1, -2)) * (1 / math.sqrt(dh)) + bias, dim=-1)
            ctx = (att @ v).transpose(1, 2).reshape(B, T, d)
            x = x + (ctx @ b.attn.wo + b.attn.bo)
            h = b.ln2(x)
            x = x + (torch.relu(h @ b.mlp.w1 + b.mlp.b1) @ b.mlp.w2 + b.mlp.b2)
        return self.ln_f(x)

    def logits(self, hidden2d):
        """[N, d] -> [N, V]: the head is the tied token embedding."""
        return hidden2d @ self.tok_emb.t()

    def new_cache(self, B, S, device=None):
        """An empty KV cache for B rows of up to S positions: per block (K, V), each [B, H, S, dh]."""
        d = self.tok_emb.shape[1]
        shape = (B, self.H, S, d // self.H)
        return [(torch.empty(shape, device=device), torch.empty(shape, device=device)) for _ in self.blocks]


def adamw(params, lr, weight_decay, betas=(0.9, 0.999), eps=1e-8):
    """torch AdamW with src/train/adamw.ts's param groups: decay on matrices (rank >= 2) only."""
    return torch.optim.AdamW(
        [{"params": [t for t in params if t.dim() >= 2], "weight_decay": weight_decay},
         {"params": [t for t in params if t.dim() < 2], "weight_decay": 0.0}],
        lr=lr, betas=betas, eps=eps,
    )


def read_safetensors(path):
    """name -> float32/int32 tensor, from the format's 8-byte little-endian header length + JSON header + raw data."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n])
    header.pop("__metadata__", None)
    dtypes = {"F32": torch.float32, "I32": torch.int32}
    out = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        data = bytearray(buf[8 + n + a:8 + n + b])  # a writable, aligned copy (frombuffer warns on bytes)
        t = torch.frombuffer(data, dtype=dtypes[info["dtype"]]) if data else torch.empty(0, dtype=dtypes[info["dtype"]])
        out[name] = t.reshape(info["shape"])
    return out


# ----------------------------------------------------------------------------------------------- bench


def add_model_args(p):
    """The device, thread, timing and model flags the bench subcommands share (defaults: configs/pretrain-base.yaml)."""
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--steps", type=int, default=10, help="timed steps, after 2 warm-up steps")
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--d-ff", type=int, default=512)
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--context", type=int, default=128, help="max_seq_len: rows of the position embedding")
    p.add_argument("--seed", type=int, default=1)


def setup(p, a):
    """Checks the model and device flags the bench subcommands share; sets threads and the seed; returns the device."""
    if a.d_model % a.heads:
        p.error("--d-model must be divisible by --heads")
    if a.device == "cuda" and not torch.cuda.is_available():
        print("torch_reference: --device cuda but torch.cuda.is_available() is false", file=sys.stderr)
        sys.exit(2)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    return torch.device(a.device)


def bench(argv):
    # Defaults: configs/pretrain-base.yaml `model:` (bench.ts passes them all explicitly anyway).
    p = argparse.ArgumentParser(prog="torch_reference.py [bench]", description="scripts/bench.ts's `lm` measurement in PyTorch")
    add_model_args(p)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=64)
    a = p.parse_args(argv)
    if a.seq > a.context:
        p.error(f"--seq {a.seq} exceeds --context {a.context}")
    dev = setup(p, a)

    model = Transformer(a.vocab, a.d_model, a.layers, a.heads, a.d_ff, a.context).to(dev)
    params = list(model.parameters())
    n_params = sum(t.numel() for t in params)
    opt = adamw(params, lr=1e-4, weight_decay=0.01)

    # Random tokens in [9, vocab) like bench.ts, made up front on the host and copied per step (bench.ts
    # likewise builds each batch on the JS side and uploads it).
    batches = [torch.randint(9, a.vocab, (a.batch, a.seq)) for _ in range(a.steps + 2)]

    def step(ids):
        ids = ids.to(dev)
        hidden = model(ids)
        d = hidden.shape[-1]
        # loss at every position after the first: hidden state t predicts token t+1
        logits = model.logits(hidden[:, :-1].reshape(-1, d))
        loss = F.cross_entropy(logits, ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()  # one host read per step, as sftStep reads its loss

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for ids in batches[:2]:
        step(ids)
    sync()
    t0 = time.perf_counter()
    for ids in batches[2:]:
        loss = step(ids)
    sync()
    s = time.perf_counter() - t0
    if not math.isfinite(loss):
        print(f"torch_reference: non-finite loss {loss}", file=sys.stderr)
        sys.exit(1)

    print(json.dumps({
        "tokens_per_s": a.batch * a.seq * a.steps / s,
        "ms_per_step": 1000 * s / a.steps,
        "params": n_params,
        "torch": torch.__version__,
        "device": a.device if a.device == "cpu" else f"cuda ({torch.cuda.get_device_name()})",
        "threads": torch.get_num_threads(),
        "loss": loss,
    }))


# -------------------------------------------------------------------------------------------------- rl


def padded_batch(seqs, pad_id, device):
    """Left-padded ids [B, T], positions [B, T] (0 at each row's first real token), the per-row pad
    counts [B] and the additive attention bias [B, 1, T, T] of src/model/batch.ts buildInput (query t
    sees key j when pad <= j <= t), built with tensor ops rather than left_padded's loops."""
    B, T = len(seqs), max(len(s) for s in seqs)
    ids = torch.full((B, T), pad_id, dtype=torch.long)
    for b, s in enumerate(seqs):
        ids[b, T - len(s):] = torch.tensor(s, dtype=torch.long)
    pads = torch.tensor([T - len(s) for s in seqs])
    col = torch.arange(T)
    pos = (col[None, :] - pads[:, None]).clamp(min=0)
    allowed = (col[None, :] <= col[:, None])[None] & (col[None, :] >= pads[:, None])[:, None, :]
    bias = torch.zeros(B, 1, T, T).masked_fill_(~allowed[:, None], NEG_INF)
    return ids.to(device), pos.to(device), pads.to(device), bias.to(device)


def rl(argv):
    """scripts/bench.ts's `rl` measurement: one GRPO step (rollout with a KV cache, then the clipped-
    surrogate update), the way a competent eager-PyTorch user would write it.

    rollout (torch.no_grad): the P prompts are left-padded and prefilled ONCE into a KV cache, which
    is then expanded G times (repeat_interleave over rows, with the prefill's last logits), since the
    G completions of a prompt share it; --prefill per-sample instead prefills all P*G rows, as
    gta's decoder (and a plain HF-style generate with num_return_sequences) does. Then N steps:
    sample every row from softmax(logits) (temperature 1) with torch.multinomial, and (except after
    the last) run the new token through the model against a preallocated static cache (keys and
    values written in place, attention over the filled columns with pad keys masked): N tokens take
    N - 1 incremental passes. No structure constraints, no EOS: every row samples exactly N tokens.

    update: one forward over the P*G left-padded prompt+completion sequences, the logits only at the
    N positions that predict completion tokens (the completions are right-aligned after the common
    prompt width), log_softmax + gather of the sampled tokens; ratio exp(logp - logp.detach()) (one
    update per rollout, old logp = the current one), the clipped surrogate
    -min(r A, clip(r, 1-eps, 1+eps) A) with A drawn once per step from a fixed seed and normalised in
    each group, averaged over each sequence's tokens then over sequences (TRL's 'grpo'); backward,
    clip_grad_norm_(1.0), AdamW (decay on matrices only). One host read (the loss) per step.

    --loss-positions restricts the loss to some completion positions (the logits are then computed at
    those rows only): bench.ts passes the ones gta's structured GTA step trains (not the guess span,
    not forced tags; src/train/rl_tokens.ts), so the update does the same head work as gta's.
    --guess-ce adds GTA's guess cross-entropy (src/train/gta.ts): the mean CE of the gold label tokens
    after `prompt <guess>` (the file's "guess" and "gold"), its own forward and backward; both
    gradients come from torch.autograd.grad and are combined by drop_sft_on_conflict (lambdas 1: the
    sum, or the RL gradient alone when their cosine over all parameters is negative) before clipping
    and AdamW. Without the two flags: plain GRPO on every completion token.

    Times: 2 warm-up steps, then --steps timed ones; rollout and update each timed on its own
    (synchronising CUDA), the mean over the timed steps reported. tokens counted: P * G * N.
    """
    p = argparse.ArgumentParser(prog="torch_reference.py rl", description="scripts/bench.ts's `rl` measurement in PyTorch (rollout with a KV cache + GRPO update)")
    add_model_args(p)
    p.add_argument("--prompts-file", help='JSON {"prompts": [[token ids], ...], "pad_id": n, and for --guess-ce "guess": [[prompt ids + <guess>], ...], "gold": [[label ids], ...]}: the real prompts (bench.ts writes them); overrides --prompts/--prompt-len')
    p.add_argument("--prompts", type=int, default=8, help="P, without --prompts-file: random prompts of --prompt-len tokens")
    p.add_argument("--prompt-len", type=int, default=24)
    p.add_argument("--group", type=int, default=8, help="G: completions per prompt")
    p.add_argument("--new-tokens", type=int, default=17, help="N: tokens sampled per completion")
    p.add_argument("--prefill", choices=["once", "per-sample"], default="once", help="prefill each prompt once and expand the cache G times (default), or prefill all P*G rows")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--epsilon", type=float, default=0.2)
    p.add_argument("--loss-positions", help="comma-separated completion positions (0-based) in the loss; default all N")
    p.add_argument("--guess-ce", action="store_true", help="add GTA's guess cross-entropy and drop_sft_on_conflict (needs --prompts-file with guess and gold)")
    a = p.parse_args(argv)
    dev = setup(p, a)
    pad_id, spec = 0, {}
    if a.prompts_file:
        with open(a.prompts_file) as f:
            spec = json.load(f)
        prompts, pad_id = spec["prompts"], spec.get("pad_id", 0)
    else:
        prompts = torch.randint(9, a.vocab, (a.prompts, a.prompt_len)).tolist()
    if a.guess_ce and not ("guess" in spec and "gold" in spec):
        p.error("--guess-ce needs a --prompts-file with \"guess\" and \"gold\"")
    P, G, N = len(prompts), a.group, a.new_tokens
    loss_pos = list(range(N)) if a.loss_positions is None else sorted({int(x) for x in a.loss_positions.split(",")})
    if not loss_pos or loss_pos[0] < 0 or loss_pos[-1] >= N:
        p.error(f"--loss-positions must be in 0..{N - 1}")
    B = P * G
    Tp = max(len(s) for s in prompts)
    if Tp + N > a.context:
        p.error(f"longest prompt {Tp} + --new-tokens {N} exceeds --context {a.context}")

    model = Transformer(a.vocab, a.d_model, a.layers, a.heads, a.d_ff, a.context).to(dev)
    params = list(model.parameters())
    n_params = sum(t.numel() for t in params)
    opt = adamw(params, lr=a.lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(a.seed + 1)
    advs = []
    for _ in range(a.steps + 2):
        r = torch.randn(P, G, generator=gen)
        advs.append(((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)).reshape(B, 1))

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    @torch.no_grad()
    def rollout():
        """-> prompt ids, positions, pads (all [B, ...], rows grouped by prompt) and the sampled tokens [B, N]."""
        once = a.prefill == "once"
        ids, pos, pads, bias = padded_batch(prompts if once else [s for s in prompts for _ in range(G)], pad_id, dev)
        cache = model.new_cache(ids.shape[0], Tp + N, dev)
        logits = model.logits(model(ids, pos, bias, cache, 0)[:, -1])
        if once:
            cache = [(K.repeat_interleave(G, 0), V.repeat_interleave(G, 0)) for K, V in cache]
            ids, pos, pads, logits = (t.repeat_interleave(G, 0) for t in (ids, pos, pads, logits))
        lens = Tp - pads
        # the bias of one new query: pad keys hidden, every later key (prompt or completion) visible
        key_bias = torch.zeros(B, 1, 1, Tp + N, device=dev)
        key_bias[:, 0, 0, :Tp].masked_fill_(torch.arange(Tp, device=dev)[None, :] < pads[:, None], NEG_INF)
        out = torch.empty(B, N, dtype=torch.long, device=dev)
        for i in range(N):
            tok = torch.multinomial(torch.softmax(logits, -1), 1)  # temperature 1
            out[:, i] = tok[:, 0]
            if i == N - 1:
                break
            h = model(tok, (lens + i)[:, None], key_bias[..., :Tp + i + 1], cache, Tp + i)
            logits = model.logits(h[:, 0])
        return ids, pos, pads, out

    if a.guess_ce:
        guess_seqs = [g + t for g, t in zip(spec["guess"], spec["gold"])]
        g_ids, g_pos, g_pads, g_bias = padded_batch(guess_seqs, pad_id, dev)
        Tg = g_ids.shape[1]
        # hidden state at column c predicts column c+1: the gold tokens are each row's last len(gold) columns
        g_rows = torch.tensor([b * Tg + Tg - len(t) - 1 + j for b, t in enumerate(spec["gold"]) for j in range(len(t))], device=dev)
        g_targets = torch.tensor([x for t in spec["gold"] for x in t], device=dev)
    lp_cols = torch.tensor(loss_pos, device=dev)
    K = len(loss_pos)

    def update(ids, pos, pads, out, adv):
        full = torch.cat([ids, out], 1)
        lens = Tp - pads
        fpos = torch.cat([pos, lens[:, None] + torch.arange(N, device=dev)[None, :]], 1)
        T = Tp + N
        col = torch.arange(T, device=dev)
        allowed = (col[None, :] <= col[:, None])[None] & (col[None, :] >= pads[:, None])[:, None, :]
        bias = torch.zeros(B, 1, T, T, device=dev).masked_fill_(~allowed[:, None], NEG_INF)
        hidden = model(full, fpos, bias)
        d = hidden.shape[-1]
        # hidden state Tp-1+j predicts completion token j
        h = hidden[:, Tp - 1:T - 1] if K == N else hidden[:, Tp - 1 + lp_cols]
        logp = F.log_softmax(model.logits(h.reshape(-1, d)), -1).gather(1, (out if K == N else out[:, lp_cols]).reshape(-1, 1)).reshape(B, K)
        ratio = torch.exp(logp - logp.detach())
        adv = adv.to(dev)
        per_token = -torch.min(ratio * adv, ratio.clamp(1 - a.epsilon, 1 + a.epsilon) * adv)
        loss = per_token.mean(1).mean()
        opt.zero_grad(set_to_none=True)
        if a.guess_ce:
            g_hidden = model(g_ids, g_pos, g_bias).reshape(-1, d)
            g_loss = F.cross_entropy(model.logits(g_hidden[g_rows]), g_targets)
            g_sft = torch.autograd.grad(g_loss, params)
            g_rl = torch.autograd.grad(loss, params)
            dot = sum((x * y).sum() for x, y in zip(g_sft, g_rl))
            nn = sum((x * x).sum() for x in g_sft) * sum((y * y).sum() for y in g_rl)
            conflict = bool(nn > 0 and dot < 0)  # the cosine's sign: one host read
            for t, x, y in zip(params, g_sft, g_rl):
                t.grad = y if conflict else x + y
        else:
            loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    roll_s, upd_s = [], []
    for k in range(a.steps + 2):
        sync()
        t0 = time.perf_counter()
        r = rollout()
        sync()
        t1 = time.perf_counter()
        loss = update(*r, advs[k])
        sync()
        t2 = time.perf_counter()
        if k >= 2:
            roll_s.append(t1 - t0)
            upd_s.append(t2 - t1)
    if not math.isfinite(loss):
        print(f"torch_reference: non-finite loss {loss}", file=sys.stderr)
        sys.exit(1)
    rs, us = sum(roll_s) / len(roll_s), sum(upd_s) / len(upd_s)
    print(json.dumps({
        "rollout_tokens_per_s": B * N / rs,
        "rollout_ms": 1000 * rs,
        "update_ms": 1000 * us,
        "step_ms": 1000 * (rs + us),
        "timing": "mean",
        "prompts": P,
        "group": G,
        "new_tokens": N,
        "prompt_tokens": sum(len(s) for s in prompts),
        "prompt_width": Tp,
        "prefill": a.prefill,
        "loss_tokens": K,
        "guess_ce": a.guess_ce,
        "params": n_params,
        "torch": torch.__version__,
        "device": a.device if a.device == "cpu" else f"cuda ({torch.cuda.get_device_name()})",
        "threads": torch.get_num_threads(),
        "loss": loss,
    }))


# ---------------------------------------------------------------------------------------------- parity


def left_padded(seqs, pad_id):
    """src/model/batch.ts buildInput: rows left-padded to the longest, positions restarting at 0 at each
    row's first real token, bias 0 where query t may see key j (pad <= j <= t) and NEG_INF elsewhere
    (padding rows see nothing: their softmax is uniform, and nothing real attends to them)."""
    B, T = len(seqs), max(len(s) for s in seqs)
    ids = torch.full((B, T), pad_id, dtype=torch.long)
    pos = torch.zeros((B, T), dtype=torch.long)
    bias = torch.full((B, 1, T, T), NEG_INF)
    pads = []
    for b, s in enumerate(seqs):
        p = T - len(s)
        pads.append(p)
        ids[b, p:] = torch.tensor(s, dtype=torch.long)
        pos[b, p:] = torch.arange(len(s))
        for t in range(p, T):
            bias[b, 0, t, p:t + 1] = 0.0
    return ids, pos, bias, pads, T


def parity(argv):
    p = argparse.ArgumentParser(prog="torch_reference.py parity", description=(
        "Recompute in PyTorch what test/torch_parity.test.ts wrote to --case (from the weights in --checkpoint) "
        "and compare: logits at every real position, SFT loss, every gradient, the global gradient norm, "
        "every parameter after one AdamW step."))
    p.add_argument("--checkpoint", required=True, help="a gta checkpoint folder (config.json, model.safetensors)")
    p.add_argument("--case", required=True, help="folder with case.json (the batch and optimizer settings) and gta.safetensors (gta's results)")
    p.add_argument("--tol", type=float, default=1e-4, help="largest allowed |gta - torch| / max(1, |torch|), every value (default 1e-4)")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)

    with open(os.path.join(a.checkpoint, "config.json")) as f:
        arch = json.load(f)["arch"]
    model = Transformer.from_arch(arch)
    weights = read_safetensors(os.path.join(a.checkpoint, "model.safetensors"))
    model.load_state_dict(weights, strict=True)  # same names and shapes as gta's, or this raises
    named = dict(model.named_parameters())

    with open(os.path.join(a.case, "case.json")) as f:
        case = json.load(f)
    gta = read_safetensors(os.path.join(a.case, "gta.safetensors"))
    seqs, prompt_lens, o = case["seqs"], case["prompt_lens"], case["optim"]

    ids, pos, bias, pads, T = left_padded(seqs, case["pad_id"])
    hidden = model(ids, pos, bias).reshape(len(seqs) * T, -1)
    # (a) logits at every real position, row by row, left to right
    real = [b * T + t for b in range(len(seqs)) for t in range(pads[b], T)]
    logits = model.logits(hidden[real]).detach()
    # (b) src/train/sft.ts: mean cross-entropy of the target tokens (from prompt_len on), each
    # predicted by the hidden state one column to its left; logits only at those rows
    rows = [b * T + pads[b] + j - 1 for b, s in enumerate(seqs) for j in range(prompt_lens[b], len(s))]
    targets = torch.tensor([s[j] for b, s in enumerate(seqs) for j in range(prompt_lens[b], len(s))])
    loss = F.cross_entropy(model.logits(hidden[rows]), targets)
    loss.backward()
    # (c) gradients
    grads = {n: t.grad.detach().clone() for n, t in named.items()}
    # (d) one AdamW step. src/train/adamw.ts clips at the global norm (scale clip / norm when the norm
    # exceeds clip); clip_grad_norm_ scales by clip / (norm + 1e-6), a relative difference of 1e-6 / norm
    # in the gradient, which Adam's first step (m_hat / sqrt(v_hat) = g / |g|) all but cancels.
    # Done twice from the checkpoint's weights: with torch's gradients (end to end: everything above,
    # then the optimizer) and with gta's (the optimizer alone: param groups, decay, bias correction,
    # clipping). The end-to-end one is ill-conditioned where the clipped gradient g is near eps: the
    # first update lr * g / (|g| + eps) moves by lr * eps / (|g| + eps)^2 per unit of g, up to lr / eps
    # (1e5 at lr 1e-3, eps 1e-8); on checkpoints/base float32 noise of 1.3e-8 in a gradient of 5e-8
    # (4e-9 once clipped) moves one parameter of blocks.0.mlp.w2 by 5.6e-5.
    def one_step(grad_of):
        m = Transformer.from_arch(arch)
        m.load_state_dict(weights, strict=True)
        ps = dict(m.named_parameters())
        for n, t in ps.items():
            t.grad = grad_of(n).detach().clone().reshape(t.shape)
        clip = o["grad_clip"] if o["grad_clip"] > 0 else float("inf")  # inf: just the norm
        norm = torch.nn.utils.clip_grad_norm_(list(ps.values()), clip)
        adamw(list(ps.values()), lr=o["lr"], weight_decay=o["weight_decay"], betas=(o["beta1"], o["beta2"]), eps=o["eps"]).step()
        return float(norm), {n: t.detach() for n, t in ps.items()}

    missing = [k for k in ["logits", "loss", "grad_norm"] + [f"{pre}.{n}" for pre in ("grad", "param") for n in named] if k not in gta]
    extra = sorted(set(gta) - {"logits", "loss", "grad_norm"} - {f"{pre}.{n}" for pre in ("grad", "param") for n in named})
    if missing or extra:
        raise SystemExit(f"torch_reference parity: {a.case}/gta.safetensors does not hold this model's results "
                         f"(missing {missing[:5]}, unexpected {extra[:5]})")
    grad_norm, after = one_step(lambda n: grads[n])
    _, after_gta_grads = one_step(lambda n: gta[f"grad.{n}"])

    # The criterion, elementwise: |gta - torch| <= tol * max(1, |torch|), i.e. absolute for values up to
    # 1 in magnitude (every gradient, nearly every parameter) and relative above. float32
    # keeps ~7 significant digits, and the large values here are long float32 sums computed in a
    # different order on each side: logits (|x| up to ~15), the loss (~9) and above all the global
    # gradient norm (~11), a sum of ~1M squares. On checkpoints/base gta's norm (tf.sum on wasm, which
    # adds each tensor's squares sequentially) is 5e-5 relative below the float64 value and torch
    # 1.13's clip_grad_norm_ 1.5e-5 below it; 1e-4 absolute on a norm of 11 would ask 9e-6 relative,
    # which neither meets. max_abs_diff is reported as well.
    def compare(ref, got, name):
        ref, got = ref.double().reshape(-1), got.double().reshape(-1)
        if ref.numel() != got.numel():
            raise SystemExit(f"torch_reference parity: {name} has {ref.numel()} values in torch, {got.numel()} in gta")
        if not ref.numel():
            return 0.0, 0.0
        d = (got - ref).abs()
        return d.max().item(), (d / ref.abs().clamp(min=1.0)).max().item()

    def over_tensors(prefix, refs):
        """(max abs diff, max err, name of the tensor with the largest err) over a set of named tensors."""
        res = {n: compare(t, gta[prefix + n], prefix + n) for n, t in refs.items()}
        n = max(res, key=lambda k: res[k][1])
        return max(r[0] for r in res.values()), res[n][1], n

    results = {
        "logits": compare(logits, gta["logits"], "logits"),
        "loss": compare(loss.detach().reshape(1), gta["loss"], "loss"),
        "grads": over_tensors("grad.", grads),
        "grad_norm": compare(torch.tensor([grad_norm]), gta["grad_norm"], "grad_norm"),
        "params_after_step": over_tensors("param.", after),
        "params_after_step_on_gta_grads": over_tensors("param.", after_gta_grads),
    }
    worst_of = {k: r[2] for k, r in results.items() if len(r) > 2}
    over = {k: r[1] for k, r in results.items() if not r[1] <= a.tol}
    print(json.dumps({
        "max_abs_diff": {k: r[0] for k, r in results.items()},
        "max_err": {k: r[1] for k, r in results.items()},
        "worst_tensor": worst_of,
        "tol": a.tol,
        "ok": not over,
        "loss": loss.item(),
        "grad_norm": grad_norm,
        "logit_rows": len(real),
        "target_tokens": len(rows),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
    }))
    if over:
        k = max(over, key=over.get)
        which = f" (worst tensor {worst_of[k]})" if k in worst_of else ""
        print(f"torch_reference parity: gta and PyTorch differ: {k} by {over[k]:.3g}{which}, tolerance {a.tol:g}"
              + "".join(f"; {k2} by {v:.3g}" for k2, v in over.items() if k2 != k), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["parity"]:
        parity(args[1:])
    elif args[:1] == ["rl"]:
        rl(args[1:])
    else:
        bench(args[1:] if args[:1] == ["bench"] else args)
