#!/usr/bin/env python3
"""
Writes test/fixtures/export/<name>/golden.safetensors: what Python transformers computes from folders
`gta export` wrote (src/model/hf_export.ts), loaded as a user would load them:

    AutoTokenizer.from_pretrained(dir); AutoModelForCausalLM.from_pretrained(dir)

For each text of test/export.test.ts, the tokenizer's ids (`ids_<i>`, no special tokens added, none
matched in the text: split_special_tokens) and the
float32 logits of the model on BOS + those ids (`logits_<i>`). test/export.test.ts exports the same
models again (they are deterministic: a seeded tiny model, the tiny Hugging Face fixtures) and checks
gta's token ids and logits against these, so an exported folder is known to load in transformers and
compute what gta computes. Run once, by hand, after the exports are written (nothing in npm ci,
npm test or CI runs Python):

    node dist/scripts/write_export_fixtures.js /tmp/exports     # the folders, as the test makes them
    /path/to/venv/bin/python scripts/make_export_fixtures.py /tmp/exports

(a venv from the workstation's local index: torch, transformers, safetensors).
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')


def main(exports: str) -> None:
    texts = json.load(open(os.path.join(exports, 'texts.json')))
    for name in sorted(os.listdir(exports)):
        folder = os.path.join(exports, name)
        if not os.path.isdir(folder):
            continue
        tok = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32).eval()
        bos = json.load(open(os.path.join(folder, 'gta_fixture.json')))['bos_id']
        out = {}
        for i, text in enumerate(texts):
            # split_special_tokens: a tag written in the text stays characters, as gta reads user text
            # (transformers' default would match "<answer>" in it as the special token)
            ids = tok(text, add_special_tokens=False, split_special_tokens=True).input_ids
            with torch.no_grad():
                logits = model(torch.tensor([[bos, *ids]])).logits[0]
            out[f'ids_{i}'] = torch.tensor(ids, dtype=torch.float32)  # (small integers, exact; gta's reader takes float tensors)
            out[f'logits_{i}'] = logits.float().contiguous()
        dst = os.path.join(ROOT, 'test', 'fixtures', 'export', name)
        os.makedirs(dst, exist_ok=True)
        save_file(out, os.path.join(dst, 'golden.safetensors'), metadata={'model_type': model.config.model_type, 'architectures': ','.join(model.config.architectures or [])})
        print(f'{name}: {type(model).__name__} ({model.config.model_type}), {len(texts)} texts -> {dst}')


if __name__ == '__main__':
    main(sys.argv[1])
