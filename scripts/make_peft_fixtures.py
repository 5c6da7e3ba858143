#!/usr/bin/env python3
"""
Writes test/fixtures/peft/<family>/: LoRA adapters made by Python PEFT on the tiny Hugging Face fixtures
(test/fixtures/hf/, scripts/make_hf_fixtures.py), as PeftModel.save_pretrained writes them
(adapter_config.json, adapter_model.safetensors), and golden.safetensors with what PyTorch computes
with them: the logits of two random sequences, and the gradients of every adapter's A and B for the
loss sum(logits * R) with a fixed random R. test/lora.test.ts loads the adapters through gta's PEFT
reader and checks logits and gradients against these. Run once, by hand (nothing in npm ci, npm test
or CI runs Python):

    python3 -m venv /tmp/pv && /tmp/pv/bin/pip install torch transformers peft safetensors
    /tmp/pv/bin/python scripts/make_peft_fixtures.py

Adapters start random in both A and B (init_lora_weights=False: PEFT's default B = 0 would make the
adapted model the base and B's gradient the only nonzero one), on every linear module of the family,
with alpha != r so the scale alpha / r is exercised.

    /tmp/pv/bin/python scripts/make_peft_fixtures.py --check DIR BASE

instead loads a checkpoint folder gta wrote (DIR, from a run with train.lora on the model folder BASE)
with PeftModel.from_pretrained and prints the adapters it loaded and their logits on a few ids.
"""
import json
import os
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures')
TARGETS = {
    'llama': ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    'qwen3': ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    'gpt2': ['c_attn', 'c_proj', 'c_fc'],
}


def make(family):
    base = AutoModelForCausalLM.from_pretrained(os.path.join(ROOT, 'hf', family), dtype=torch.float32)
    torch.manual_seed(0)
    cfg = LoraConfig(r=4, lora_alpha=6, lora_dropout=0.0, target_modules=TARGETS[family], init_lora_weights=False,
                     fan_in_fan_out=family == 'gpt2', task_type='CAUSAL_LM')
    model = get_peft_model(base, cfg)
    out = os.path.join(ROOT, 'peft', family)
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out)
    os.remove(os.path.join(out, 'README.md'))  # PEFT's model card template
    with open(os.path.join(out, 'adapter_config.json')) as f:
        c = json.load(f)
    c['base_model_name_or_path'] = f'test/fixtures/hf/{family}'  # not this machine's absolute path
    with open(os.path.join(out, 'adapter_config.json'), 'w') as f:
        json.dump(c, f, indent=2, sort_keys=True)
    V = base.config.vocab_size
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, V, (2, 7), generator=g)
    R = torch.randn(2, 7, V, generator=g)
    logits = model(input_ids=ids).logits
    (logits * R).sum().backward()
    golden = {'ids': ids.to(torch.int32).contiguous(), 'R': R.contiguous(), 'logits': logits.detach().contiguous()}
    n = 0
    for name, p in model.named_parameters():
        if 'lora_' in name:
            golden['grad.' + name.replace('.default', '')] = p.grad.contiguous()
            n += 1
    save_file(golden, os.path.join(out, 'golden.safetensors'), metadata={'note': 'scripts/make_peft_fixtures.py'})
    print(f'{family}: {n} adapter tensors, logits {tuple(logits.shape)} -> {out}')


def check(folder, base_dir):
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, folder)
    loaded = [n for n, _ in model.named_parameters() if 'lora_' in n]
    nonzero = sum(int(p.abs().sum() > 0) for n, p in model.named_parameters() if 'lora_B' in n)
    print(json.dumps({'adapter_tensors': len(loaded), 'nonzero_B': nonzero, 'config': model.peft_config['default'].to_dict()['target_modules']}, default=list))
    ids = torch.tensor([[1, 5, 9, 13, 17]])
    print(model(input_ids=ids).logits[0, -1, :8].tolist())


if __name__ == '__main__':
    if len(sys.argv) == 4 and sys.argv[1] == '--check':
        check(sys.argv[2], sys.argv[3])
    else:
        for family in TARGETS:
            make(family)
