/**
 * prompt.chat (src/task/chat.ts): an instruct model's chat template, rendered by @huggingface/jinja,
 * around the prompt: its special tokens are tokens, the example's text stays characters, and the
 * template travels with the tokenizer into checkpoints (so eval and predict build the same prompts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadCheckpoint, saveCheckpoint } from '../src/model/checkpoint.js';
import { loadInitial } from '../src/model/init.js';
import { promptBuilder } from '../src/task/prompt.js';
import type { HfTokenizer } from '../src/tokenizer/hf.js';
import { repoRoot } from '../src/util/paths.js';
import { tinyTokenizer, tmpDir, useWasm } from './helpers/tiny.js';

const QWEN2 = path.join(repoRoot(), 'test', 'fixtures', 'hf', 'qwen2');
/** Qwen2.5-Instruct's template, without its tool-calling branches. */
const CHATML = `{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}
{%- for message in messages %}{%- if message.role != 'system' %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
`;
const RENDERED = (text: string) => `<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nReview: ${text}<|im_end|>\n<|im_start|>assistant\n`;

/** The qwen2 fixture with a chat template, in chat_template.jinja or in tokenizer_config.json. */
function instructFolder(where: 'jinja' | 'config'): string {
  const dir = tmpDir('gta-chat-');
  for (const f of fs.readdirSync(QWEN2)) fs.copyFileSync(path.join(QWEN2, f), path.join(dir, f));
  if (where === 'jinja') fs.writeFileSync(path.join(dir, 'chat_template.jinja'), CHATML);
  else {
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
    fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ ...cfg, chat_template: CHATML }));
  }
  return dir;
}

test('prompt.chat renders the chat template: its special tokens are tokens, the text stays characters', async () => {
  await useWasm();
  for (const where of ['jinja', 'config'] as const) {
    const { model, tokenizer } = loadInitial(instructFolder(where), 1);
    const tok = tokenizer as HfTokenizer;
    const [imStart, imEnd] = [1, 2]; // the fixture's <|im_start|> and <|im_end|>
    const text = 'a good film <|im_end|> really';
    const ids = promptBuilder(tok, 'Review: {text}', 32, true).prompt(text);
    const expected = [
      imStart, ...tok.encode('system\nYou are a helpful assistant.'), imEnd, ...tok.encode('\n'),
      imStart, ...tok.encode('user\nReview: '), ...tok.encode(text), imEnd, ...tok.encode('\n'),
      imStart, ...tok.encode('assistant\n'),
    ];
    assert.deepEqual(ids, expected, where);
    assert.equal(ids.filter((id) => id === imEnd).length, 2, 'the text\'s "<|im_end|>" is characters, not the token');
    assert.equal(tok.decode(ids), RENDERED(text));
    // text is still truncated to max_text_tokens, between the template's pieces
    const short = promptBuilder(tok, 'Review: {text}', 2, true).prompt(text);
    assert.deepEqual(short, [...expected.slice(0, expected.indexOf(imStart, 1) + 1), ...tok.encode('user\nReview: '), ...tok.encode(text).slice(0, 2), imEnd, ...tok.encode('\n'), imStart, ...tok.encode('assistant\n')]);
    model.dispose();
  }
});

test('the chat template travels in the checkpoint, so eval and predict build the same prompts', async () => {
  await useWasm();
  const { model, tokenizer } = loadInitial(instructFolder('jinja'), 1);
  const ckpt = path.join(tmpDir(), 'ckpt');
  saveCheckpoint(ckpt, model, tokenizer, { kind: 'training', step: 0 });
  const back = loadCheckpoint(ckpt);
  assert.deepEqual(promptBuilder(back.tokenizer, '{text}', 16, true).prompt('fine'), promptBuilder(tokenizer, '{text}', 16, true).prompt('fine'));
  model.dispose();
  back.model.dispose();
});

test('prompt.chat without a chat template is one line saying why', async () => {
  await useWasm();
  const { model, tokenizer } = loadInitial(QWEN2, 1);
  assert.throws(() => promptBuilder(tokenizer, '{text}', 16, true), (e: Error) => e.message === "prompt.chat: the model's tokenizer has no chat_template (tokenizer_config.json's chat_template or chat_template.jinja); set prompt.chat: false");
  assert.throws(() => promptBuilder(tinyTokenizer(), '{text}', 16, true), /prompt\.chat: the model's tokenizer has no chat_template \(gta's own models have none/);
  const bad = instructFolder('config');
  const cfg = JSON.parse(fs.readFileSync(path.join(bad, 'tokenizer_config.json'), 'utf8'));
  fs.writeFileSync(path.join(bad, 'tokenizer_config.json'), JSON.stringify({ ...cfg, chat_template: '{{ messages[0].content }}{{ messages[0].content }}' }));
  assert.throws(() => promptBuilder(loadInitial(bad, 1).tokenizer, '{text}', 16, true), /chat_template repeats the user's message; gta needs it once/);
  model.dispose();
});
