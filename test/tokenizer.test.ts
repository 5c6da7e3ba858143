import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SPECIAL_TOKENS, Tokenizer } from '../src/tokenizer/bpe.js';
import { pretokenize } from '../src/tokenizer/pretokenize.js';
import { GtaError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';

/** Deterministic synthetic corpus: sentences of Zipf-ish pseudo-words with punctuation. */
function corpus(n: number, seed = 1): string[] {
  const rng = new Rng(seed);
  const syll = ['the', 'mov', 'ie', 'film', 'good', 'bad', 'ing', 'er', 'ly', 'act', 'or', 'plot', 'is', 'was', 'not', 'very', 'fun', 'ny', 'dull'];
  const lexicon: string[] = [];
  for (let i = 0; i < 300; i++) {
    const k = 1 + rng.int(3);
    let w = '';
    for (let j = 0; j < k; j++) w += syll[rng.int(syll.length)];
    lexicon.push(w);
  }
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = 4 + rng.int(12);
    const words: string[] = [];
    for (let j = 0; j < len; j++) {
      // squaring the uniform draw skews toward the front of the lexicon, like real word frequencies
      const w = lexicon[Math.floor(rng.next() ** 2 * lexicon.length)];
      words.push(j === 0 ? w[0].toUpperCase() + w.slice(1) : w);
    }
    out.push(words.join(' ') + (rng.int(2) ? '.' : ' !') + (rng.int(5) === 0 ? " it's 10/10" : ''));
  }
  return out;
}

const TRAIN = corpus(2000);
const tok = Tokenizer.train(TRAIN, { vocabSize: 600 });

const TRICKY = [
  '',
  'a',
  'Hello, world!',
  "it's a film that's   oddly\tgood\n\nreally\r\n",
  '  leading and trailing spaces   ',
  'naïve café — déjà vu ☕ 日本語のテキスト',
  'emoji 😀👍🏽 family 👨‍👩‍👧 flags 🇫🇷',
  '<answer>positive</answer> <think>hm</think><guess>x</guess><pad><bos><eos>',
  '\uFEFFBOM at start',
  'numbers 1234567890 ٣٤٥ and symbols @#$%^&*()[]{}',
  '\u0000\u0001 control \u007f chars',
];

test('pretokenize keeps every character and attaches leading spaces', () => {
  for (const s of TRICKY) assert.equal(pretokenize(s).join(''), s);
  assert.deepEqual(pretokenize("it's a film!!"), ['it', "'s", ' a', ' film', '!!']);
});

test('encode/decode round-trips exactly', () => {
  for (const s of [...TRICKY, ...TRAIN.slice(0, 50)]) {
    assert.equal(tok.decode(tok.encode(s)), s, JSON.stringify(s));
  }
  assert.deepEqual(tok.encode(''), []);
});

test('special tokens have fixed ids; literal tags in text are plain bytes', () => {
  assert.deepEqual([...SPECIAL_TOKENS], ['<pad>', '<bos>', '<eos>', '<guess>', '</guess>', '<think>', '</think>', '<answer>', '</answer>']);
  SPECIAL_TOKENS.forEach((s, i) => assert.equal(tok.id(s), i));
  assert.equal(tok.padId, 0);
  assert.equal(tok.bosId, 1);
  assert.equal(tok.eosId, 2);
  assert.equal(tok.id('<answer>'), 7);

  const ids = tok.encode('<answer>positive</answer> <pad>');
  assert.ok(ids.every((id) => id >= SPECIAL_TOKENS.length), `specials leaked into ${ids}`);

  // Specials placed by code decode to their literal text; pad decodes to nothing.
  const a = tok.id('<answer>');
  assert.equal(tok.decode([tok.bosId, a, ...tok.encode('yes'), a + 1, tok.eosId, tok.padId, tok.padId]), '<bos><answer>yes</answer><eos>');
  assert.equal(tok.tokenText(a), '<answer>');
});

test('byte tokens follow the specials; invalid UTF-8 decodes with U+FFFD', () => {
  const fresh = new Tokenizer();
  assert.equal(fresh.vocabSize, 265);
  assert.deepEqual(fresh.encode('A'), [9 + 65]);
  assert.deepEqual(fresh.encode('é'), [9 + 0xc3, 9 + 0xa9]);
  assert.equal(fresh.decode([9 + 0xc3]), '\uFFFD');
  assert.equal(fresh.tokenText(9 + 0xc3), '<0xC3>');
  assert.throws(() => fresh.decode([265]), RangeError);
});

test('training respects vocabSize and the merges compress the training text', () => {
  assert.equal(tok.vocabSize, 600);
  const text = TRAIN.join('\n');
  const ids = tok.encode(text);
  assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize));
  const bytes = new TextEncoder().encode(text).length;
  // Bytes alone would be ~1 token per char; the learned merges should cut that well below half.
  assert.ok(ids.length / text.length < 0.4, `tokens/char ${ids.length / text.length}`);
  assert.ok(ids.length < bytes);
});

test('training stops early when no pair reaches minFrequency', () => {
  const small = Tokenizer.train(['ab ab ab cd'], { vocabSize: 1000 });
  // "ab" occurs 3 times, then " "+"ab" twice; "cd" occurs once, so it is never merged.
  assert.ok(small.vocabSize < 1000);
  assert.equal(small.encode('cd').length, 2);
  assert.equal(small.encode(' ab').length, 1);
  const none = Tokenizer.train(['ab ab'], { vocabSize: 1000, minFrequency: 3 });
  assert.equal(none.vocabSize, 265);
});

test('training is deterministic and breaks ties by smallest (left, right)', () => {
  const again = Tokenizer.train(TRAIN, { vocabSize: 600 });
  assert.deepEqual(again.toJSON(), tok.toJSON());
  assert.equal(again.fingerprint(), tok.fingerprint());
  // Pairs (y,x), (' ',x), (x,y) all occur twice; the smallest (left, right) wins: ' ' < 'x' < 'y'.
  const tie = Tokenizer.train(['yx xy', 'yx xy'], { vocabSize: 266 });
  const x = 9 + 'x'.charCodeAt(0);
  const y = 9 + 'y'.charCodeAt(0);
  const sp = 9 + 32;
  assert.deepEqual(tie.toJSON().merges, [[sp, x]]);
  assert.ok(sp < x && x < y);
});

test('vocabSize below 266 is rejected', () => {
  assert.throws(() => Tokenizer.train(TRAIN, { vocabSize: 265 }), /vocabSize/);
  assert.throws(() => Tokenizer.train(TRAIN, { vocabSize: 100 }), /vocabSize/);
});

test('toJSON/fromJSON round trip gives identical encodings and fingerprint', () => {
  const json = JSON.parse(JSON.stringify(tok.toJSON())) as unknown;
  const back = Tokenizer.fromJSON(json);
  assert.equal(back.vocabSize, tok.vocabSize);
  assert.equal(back.fingerprint(), tok.fingerprint());
  for (const s of [...TRICKY, ...TRAIN.slice(0, 100)]) assert.deepEqual(back.encode(s), tok.encode(s));
  assert.match(tok.fingerprint(), /^[0-9a-f]{16}$/);
  assert.notEqual(new Tokenizer().fingerprint(), tok.fingerprint());
});

test('fromJSON rejects malformed input with a clear GtaError', () => {
  const good = tok.toJSON();
  const bad: [unknown, RegExp][] = [
    [null, /object/],
    [[1, 2], /object/],
    [{ ...good, type: 'wordpiece' }, /type/],
    [{ ...good, version: 2 }, /version/],
    [{ ...good, specials: good.specials.slice(1) }, /specials/],
    [{ ...good, merges: 'nope' }, /merges/],
    [{ ...good, merges: [[9, 10, 11]] }, /merge 0/],
    [{ ...good, merges: [[9, 265]] }, /merge 0/], // refers to a token that does not exist yet
    [{ ...good, merges: [[3, 10]] }, /merge 0/], // specials never take part in merges
    [{ ...good, merges: [[9, 1.5]] }, /merge 0/],
    [{ ...good, merges: [[9, 10], [9, 10]] }, /merge 1 duplicates/],
  ];
  for (const [input, msg] of bad) {
    assert.throws(
      () => Tokenizer.fromJSON(input),
      (e: unknown) => e instanceof GtaError && /^tokenizer: /.test(e.message) && msg.test(e.message),
      JSON.stringify(input)?.slice(0, 80),
    );
  }
});
