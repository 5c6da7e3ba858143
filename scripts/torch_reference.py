#!/usr/bin/env python3
"""PyTorch reference for scripts/bench.ts's `lm` measurement: the same model and training step, eager fp32.

Model (as src/model/transformer.ts): decoder-only, pre-norm; learned token and position embeddings;
per block LN -> causal multi-head attention (fused qkv projection with bias, output projection with
bias) -> residual, LN -> ReLU MLP -> residual; final LN; output head tied to the token embedding.
No dropout (bench.ts trains with dropout off). Loss: mean cross-entropy at every position after the
first (src/train/sft.ts with a 1-token prompt). Optimizer: AdamW (decay on matrices only, as
src/train/adamw.ts) with global grad-norm clipping at 1.0, lr 1e-4.

Tokens counted per step = batch * seq, the definition bench.ts uses (sftStep's `tokens` counts every
token of every sequence, including the first, which has no loss).

Prints one JSON line on stdout. Exits with status 3 and a one-line note on stderr if torch is missing,
so bench.ts can try another python.
Runs on torch 1.13 (Debian's python3-torch) and 2.x alike: no torch.compile, no SDPA.
"""
import argparse
import json
import math
import os
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:
    print(f"torch_reference: PyTorch is not installed for {sys.executable} ({e})", file=sys.stderr)
    sys.exit(3)

# Defaults: configs/pretrain-base.yaml `model:` (bench.ts passes them all explicitly anyway).
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
p.add_argument("--threads", type=int, default=os.cpu_count())
p.add_argument("--batch", type=int, default=32)
p.add_argument("--seq", type=int, default=64)
p.add_argument("--steps", type=int, default=10, help="timed steps, after 2 warm-up steps")
p.add_argument("--d-model", type=int, default=128)
p.add_argument("--layers", type=int, default=2)
p.add_argument("--heads", type=int, default=4)
p.add_argument("--d-ff", type=int, default=512)
p.add_argument("--vocab", type=int, default=4096)
p.add_argument("--context", type=int, default=128, help="max_seq_len: rows of the position embedding")
p.add_argument("--seed", type=int, default=1)
a = p.parse_args()
if a.seq > a.context:
    p.error(f"--seq {a.seq} exceeds --context {a.context}")
if a.d_model % a.heads:
    p.error("--d-model must be divisible by --heads")
if a.device == "cuda" and not torch.cuda.is_available():
    print("torch_reference: --device cuda but torch.cuda.is_available() is false", file=sys.stderr)
    sys.exit(2)

torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
dev = torch.device(a.device)


class Transformer(torch.nn.Module):
    def __init__(self, V, d, L, H, ff, S):
        super().__init__()
        self.H = H
        resid = 0.02 / math.sqrt(2 * L)  # same init as Transformer.init (irrelevant to speed, kept for parity)
        P = lambda *shape, std=None: torch.nn.Parameter(torch.randn(*shape) * std if std else torch.zeros(*shape))
        self.tok_emb = P(V, d, std=0.02)
        self.pos_emb = P(S, d, std=0.01)
        self.blocks = torch.nn.ModuleList()
        for _ in range(L):
            b = torch.nn.Module()
            b.ln1_g, b.ln1_b = torch.nn.Parameter(torch.ones(d)), P(d)
            b.wqkv, b.bqkv = P(d, 3 * d, std=0.02), P(3 * d)
            b.wo, b.bo = P(d, d, std=resid), P(d)
            b.ln2_g, b.ln2_b = torch.nn.Parameter(torch.ones(d)), P(d)
            b.w1, b.b1 = P(d, ff, std=0.02), P(ff)
            b.w2, b.b2 = P(ff, d, std=resid), P(d)
            self.blocks.append(b)
        self.lnf_g, self.lnf_b = torch.nn.Parameter(torch.ones(d)), P(d)

    def forward(self, ids):
        B, T = ids.shape
        d = self.tok_emb.shape[1]
        H, dh = self.H, d // self.H
        x = self.tok_emb[ids] + self.pos_emb[:T]
        # additive causal bias like src/train/batch.ts (0 where key <= query, -1e9 elsewhere)
        bias = torch.full((T, T), -1e9, device=ids.device).triu(1)
        for b in self.blocks:
            h = F.layer_norm(x, (d,), b.ln1_g, b.ln1_b, 1e-5)
            q, k, v = (h @ b.wqkv + b.bqkv).split(d, dim=-1)
            q, k, v = (t.reshape(B, T, H, dh).transpose(1, 2) for t in (q, k, v))
            att = torch.softmax((q @ k.transpose(-1, -2)) * (1 / math.sqrt(dh)) + bias, dim=-1)
            ctx = (att @ v).transpose(1, 2).reshape(B, T, d)
            x = x + (ctx @ b.wo + b.bo)
            h = F.layer_norm(x, (d,), b.ln2_g, b.ln2_b, 1e-5)
            x = x + (torch.relu(h @ b.w1 + b.b1) @ b.w2 + b.b2)
        return F.layer_norm(x, (d,), self.lnf_g, self.lnf_b, 1e-5)


model = Transformer(a.vocab, a.d_model, a.layers, a.heads, a.d_ff, a.context).to(dev)
params = list(model.parameters())
n_params = sum(t.numel() for t in params)
opt = torch.optim.AdamW(
    [{"params": [t for t in params if t.dim() >= 2], "weight_decay": 0.01},
     {"params": [t for t in params if t.dim() < 2], "weight_decay": 0.0}],
    lr=1e-4, betas=(0.9, 0.999), eps=1e-8,
)

# Random tokens in [9, vocab) like bench.ts, made up front on the host and copied per step (bench.ts
# likewise builds each batch on the JS side and uploads it).
batches = [torch.randint(9, a.vocab, (a.batch, a.seq)) for _ in range(a.steps + 2)]


def step(ids):
    ids = ids.to(dev)
    hidden = model(ids)
    d = hidden.shape[-1]
    # loss at every position after the first: hidden state t predicts token t+1
    logits = hidden[:, :-1].reshape(-1, d) @ model.tok_emb.t()
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
