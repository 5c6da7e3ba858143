import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tokenizer } from '../src/tokenizer/bpe.js';
import { StructuredState, maxStructuredLength, parseCompletion, structureSpec } from '../src/task/structure.js';
import { builtinReward, scoreRewards } from '../src/task/rewards.js';
import { tinyTokenizer } from './helpers/tiny.js';

const tok: Tokenizer = tinyTokenizer();
const labels = ['good', 'bad', 'very good'];

/** Drives the state machine, always taking the first allowed token (or text token 100 in think). */
function walk(format: 'rl' | 'gta', pick: (allowed: number[] | 'text', step: number) => number) {
  const spec = structureSpec(tok, format, labels, 3);
  const st = new StructuredState(spec);
  const out: number[] = [];
  const spans: string[] = [];
  for (let i = 0; i < 40 && !st.done; i++) {
    const a = st.allowed();
    const t = pick(a.kind === 'only' ? a.ids : 'text', i);
    spans.push(st.span());
    st.push(t);
    out.push(t);
  }
  return { spec, out, spans, done: st.done };
}

test('structured decoding forces the GTA tags, restricts labels, and bounds think', () => {
  const { spec, out, spans, done } = walk('gta', (a) => (a === 'text' ? tok.encode(' the')[0] : a[a.length - 1]));
  assert.ok(done);
  const t = spec.tags;
  assert.equal(out[0], t.guessOpen);
  assert.ok(out.length <= maxStructuredLength(spec));
  const thinkLen = out.indexOf(t.thinkClose) - out.indexOf(t.thinkOpen) - 1;
  assert.equal(thinkLen, 3, 'think runs to its bound when the sampler never closes it');
  const p = parseCompletion(spec, out);
  assert.ok(p.wellFormed);
  assert.ok(p.guess !== null && p.answer !== null);
  assert.equal(spans[0], 'guess');
  assert.equal(spans[out.indexOf(t.answerOpen) + 1], 'answer');
});

test('forcedToEnd: true once no choice is left before EOS, and asking does not move the state', () => {
  const spec = structureSpec(tok, 'rl', labels, 0);
  const st = new StructuredState(spec);
  const t = spec.tags;
  assert.equal(st.forcedToEnd(), false, 'the answer is still to choose');
  st.push(t.thinkOpen);
  st.push(t.thinkClose);
  st.push(t.answerOpen);
  assert.equal(st.forcedToEnd(), false);
  for (const id of tok.encode('bad')) st.push(id);
  // 'bad' is a whole label that no other label extends: </answer> then EOS are forced
  assert.deepEqual(st.allowed(), { kind: 'only', ids: [t.answerClose] });
  assert.equal(st.forcedToEnd(), true);
  assert.deepEqual(st.allowed(), { kind: 'only', ids: [t.answerClose] }, 'the state is where it was');
  // after 'very' the rest of 'very good' is forced too, then the tags
  const v = new StructuredState(spec);
  for (const id of [t.thinkOpen, t.thinkClose, t.answerOpen, ...tok.encode('very')]) v.push(id);
  assert.equal(v.forcedToEnd(), true);
});

test('label restriction: after "very" only " good" may follow; a complete label may close', () => {
  const spec = structureSpec(tok, 'rl', labels, 0);
  const st = new StructuredState(spec);
  st.push(spec.tags.thinkOpen);
  assert.deepEqual(st.allowed(), { kind: 'only', ids: [spec.tags.thinkClose] }, 'think_max_tokens 0 closes think at once');
  st.push(spec.tags.thinkClose);
  st.push(spec.tags.answerOpen);
  const first = st.allowed();
  assert.equal(first.kind, 'only');
  const starts = new Set(labels.map((l) => tok.encode(l)[0]));
  assert.deepEqual(new Set((first as { ids: number[] }).ids), starts);
  for (const id of tok.encode('good')) st.push(id);
  const after = st.allowed() as { ids: number[] };
  assert.ok(after.ids.includes(spec.tags.answerClose));
});

test('parsing: well formed needs the exact tag order, known labels and EOS', () => {
  const spec = structureSpec(tok, 'gta', labels, 4);
  const t = spec.tags;
  const good = tok.encode('good');
  const bad = tok.encode('bad');
  const ok = [t.guessOpen, ...good, t.guessClose, t.thinkOpen, ...tok.encode(' hmm'), t.thinkClose, t.answerOpen, ...bad, t.answerClose, t.eos];
  assert.deepEqual(parseCompletion(spec, ok), { guess: 0, answer: 1, wellFormed: true });
  assert.equal(parseCompletion(spec, ok.slice(0, -1)).wellFormed, false, 'no EOS');
  const unknown = [t.guessOpen, ...tok.encode('meh'), t.guessClose, t.thinkOpen, t.thinkClose, t.answerOpen, ...bad, t.answerClose, t.eos];
  assert.deepEqual(parseCompletion(spec, unknown), { guess: null, answer: 1, wellFormed: false });
  const rlSpec = structureSpec(tok, 'rl', labels, 4);
  assert.equal(parseCompletion(rlSpec, ok).wellFormed, false, 'a guess is not part of the RL format');
  const rewards = [builtinReward({ name: 'accuracy', weight: 1 }), builtinReward({ name: 'format', weight: 0.5 })];
  const scored = scoreRewards([{ parsed: parseCompletion(spec, ok), gold: 1 }, { parsed: parseCompletion(spec, unknown), gold: 0 }], rewards);
  assert.deepEqual(scored.total, [1.5, 0]);
  assert.deepEqual(scored.components.accuracy, [1, 0]);
});
