#!/usr/bin/env python3
"""
Writes test/fixtures/hf/: one tiny random model per supported Hugging Face family, in the format
save_pretrained writes (config.json, safetensors, tokenizer.json, tokenizer_config.json), and
golden.safetensors with the logits Python transformers computes for a few texts. test/hf.test.ts
checks gta's logits against them (1e-4). Run once, by hand; nothing in npm ci, npm test or CI runs
Python for these fixtures:

    python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install torch transformers safetensors tokenizers
    /tmp/hfvenv/bin/python scripts/make_hf_fixtures.py

What each fixture exercises:
  gpt2   GPT-2 byte-level BPE, learned positions, LayerNorm, gelu_new, tied head; float16 weights
  llama  Llama-2-style tokenizer (Metaspace, byte fallback), RMSNorm, rotary embeddings with llama3
         scaling (all three frequency bands), SwiGLU, grouped-query attention (4 heads, 2 kv heads),
         untied head; bfloat16 weights in two shards with model.safetensors.index.json; a config in the
         older rope_theta/rope_scaling form that models on the Hub carry
  qwen2  Qwen2's split regex + byte-level BPE, q/k/v biases, GQA, tied head, an embedding with unused
         rows past the tokenizer's vocabulary (as Qwen's have); bfloat16
  qwen3  q/k RMSNorm per head, head_dim (16) unlike hidden/heads (8), GQA, tied head; bfloat16

Weights are drawn with larger spreads than an initialiser would use (norm gains 1 +- 0.3, biases
+-0.2), so that a missing bias, a wrong norm or a rotary mistake moves the logits far past 1e-4.
"""
import json
import os
import shutil
import sys

import torch
import transformers
from safetensors.torch import save_file
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import (GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config,
                          Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'hf')

CORPUS = [
    'the movie was good', 'the film was bad', 'a great story about two old friends', 'an awful, dull plot',
    'I wanted to leave after ten minutes.', "it's not bad at all", 'what a joy from start to finish!',
    'The acting is wonderful and the music is great.', 'Nobody should watch this film.', 'very good, very funny',
    'positive negative neutral', 'sports business world science', 'numbers like 12345 and 2026 too',
]
# Texts whose logits are recorded: plain words, punctuation and digits, and characters the corpus
# lacks (byte fallback and byte-level coverage).
TEXTS = ['the movie was good', "dull, isn't it? café 42"]
HIDDEN = 32
INTERMEDIATE = 64
QWEN_SPLIT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def byte_level_tokenizer(specials, split=None):
    """A byte-level BPE as GPT-2 (split None: ByteLevel's own regex) or Qwen2 and Llama 3 (a Split regex first)."""
    tok = Tokenizer(models.BPE())
    if split is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(split), behavior='isolated'),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def metaspace_tokenizer(specials):
    """A Llama-2-style BPE: Metaspace, byte fallback to <0xNN> tokens for characters it has no token for."""
    tok = Tokenizer(models.BPE(unk_token='<unk>', byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement='\u2581', prepend_scheme='first')
    tok.decoder = decoders.Sequence([decoders.Replace('\u2581', ' '), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(' ', 1, 0)])
    trainer = trainers.BpeTrainer(vocab_size=120, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    # byte_fallback needs a <0xNN> token for every byte, as Llama's vocabulary has
    j = json.loads(tok.to_str())
    vocab = j['model']['vocab']
    for b in range(256):
        vocab.setdefault(f'<0x{b:02X}>', len(vocab))
    return Tokenizer.from_str(json.dumps(j))


def randomise(model, seed):
    """Larger spreads than an initialiser's, so every weight kind shows in the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if 'norm' in name or '.ln_' in name or name.endswith('ln_f.weight'):
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g) if name.endswith('weight') else 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith('bias'):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=g))


def save(name, model, tok, specials, dtype, **save_kwargs):
    out = os.path.join(ROOT, name)
    shutil.rmtree(out, ignore_errors=True)
    model.to(dtype).save_pretrained(out, **save_kwargs)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **specials)
    fast.save_pretrained(out)
    for extra in ('generation_config.json', 'special_tokens_map.json', 'chat_template.jinja'):
        if os.path.exists(os.path.join(out, extra)):
            os.remove(os.path.join(out, extra))
    return out


def legacy_rope_config(out):
    """Rewrites config.json's rope_parameters into the rope_theta/rope_scaling keys of transformers 4 (what Hub models carry)."""
    path = os.path.join(out, 'config.json')
    cfg = json.load(open(path))
    rope = cfg.pop('rope_parameters')
    cfg['rope_theta'] = rope.pop('rope_theta')
    cfg['rope_scaling'] = rope if rope.get('rope_type') != 'default' else None
    json.dump(cfg, open(path, 'w'), indent=2, sort_keys=True)


def golden(out, bos_id):
    """Logits of each text ([BOS] + its tokens) from the saved folder, reloaded in float32."""
    tok = Tokenizer.from_file(os.path.join(out, 'tokenizer.json'))
    model = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    model.eval()
    tensors = {}
    with torch.no_grad():
        for i, text in enumerate(TEXTS):
            ids = [bos_id] + tok.encode(text, add_special_tokens=False).ids
            logits = model(input_ids=torch.tensor([ids])).logits[0]
            tensors[f'ids.{i}'] = torch.tensor(ids, dtype=torch.int32)
            tensors[f'logits.{i}'] = logits.float().contiguous()
    meta = {'texts': json.dumps(TEXTS), 'transformers': transformers.__version__, 'torch': torch.__version__}
    save_file(tensors, os.path.join(out, 'golden.safetensors'), metadata=meta)
    return {k: list(v.shape) for k, v in tensors.items()}


def main():
    torch.manual_seed(0)
    os.makedirs(ROOT, exist_ok=True)
    common = dict(hidden_size=HIDDEN, intermediate_size=INTERMEDIATE, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    made = {}

    # gpt2: <|endoftext|> is BOS, EOS and (as transformers pads GPT-2) pad
    tok = byte_level_tokenizer(['<|endoftext|>'])
    eot = tok.token_to_id('<|endoftext|>')
    cfg = GPT2Config(vocab_size=tok.get_vocab_size(), n_positions=64, n_embd=HIDDEN, n_layer=2, n_head=4, n_inner=INTERMEDIATE, activation_function='gelu_new',
                     bos_token_id=eot, eos_token_id=eot, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(cfg)
    randomise(model, 1)
    out = save('gpt2', model, tok, dict(bos_token='<|endoftext|>', eos_token='<|endoftext|>', unk_token='<|endoftext|>'), torch.float16)
    made['gpt2'] = golden(out, eot)

    # llama: Llama-2 specials <unk> <s> </s>; untied head; llama3 rope scaling over head_dim 8 (inv_freq 1,
    # 0.1, 0.01, 0.001: wavelengths 6.3, 63, 628, 6283 against bands 16 and 64: high, medium, low, low)
    tok = metaspace_tokenizer(['<unk>', '<s>', '</s>'])
    cfg = LlamaConfig(vocab_size=tok.get_vocab_size(), rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=tok.token_to_id('<s>'), eos_token_id=tok.token_to_id('</s>'),
                      rope_scaling={'rope_type': 'llama3', 'factor': 8.0, 'low_freq_factor': 1.0, 'high_freq_factor': 4.0, 'original_max_position_embeddings': 64}, rope_theta=10000.0, **common)
    model = LlamaForCausalLM(cfg)
    randomise(model, 2)
    out = save('llama', model, tok, dict(bos_token='<s>', eos_token='</s>', unk_token='<unk>'), torch.bfloat16, max_shard_size='40KB')
    legacy_rope_config(out)
    made['llama'] = golden(out, tok.token_to_id('<s>'))

    # qwen2: Qwen's specials; 8 unused embedding rows after the tokenizer's vocabulary
    qwen_specials = ['<|endoftext|>', '<|im_start|>', '<|im_end|>']
    tok = byte_level_tokenizer(qwen_specials, QWEN_SPLIT)
    eot = tok.token_to_id('<|endoftext|>')
    cfg = Qwen2Config(vocab_size=tok.get_vocab_size() + 8, rms_norm_eps=1e-6, tie_word_embeddings=True, bos_token_id=eot, eos_token_id=tok.token_to_id('<|im_end|>'), pad_token_id=eot,
                      rope_theta=1000000.0, use_sliding_window=False, **common)
    model = Qwen2ForCausalLM(cfg)
    randomise(model, 3)
    out = save('qwen2', model, tok, dict(eos_token='<|im_end|>', pad_token='<|endoftext|>'), torch.bfloat16)
    made['qwen2'] = golden(out, eot)

    # qwen3: q/k norms, head_dim 16 with hidden 32 and 4 heads
    cfg = Qwen3Config(vocab_size=tok.get_vocab_size(), rms_norm_eps=1e-6, tie_word_embeddings=True, head_dim=16, bos_token_id=eot, eos_token_id=tok.token_to_id('<|im_end|>'), pad_token_id=eot,
                      rope_theta=1000000.0, attention_bias=False, **common)
    model = Qwen3ForCausalLM(cfg)
    randomise(model, 4)
    out = save('qwen3', model, tok, dict(eos_token='<|im_end|>', pad_token='<|endoftext|>'), torch.bfloat16)
    made['qwen3'] = golden(out, eot)

    for name in made:
        files = sorted(os.listdir(os.path.join(ROOT, name)))
        size = sum(os.path.getsize(os.path.join(ROOT, name, f)) for f in files)
        print(f'{name}: {size / 1024:.0f} KB ({", ".join(files)})', file=sys.stderr)


if __name__ == '__main__':
    main()
