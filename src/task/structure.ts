/**
 * The completion formats of RL and GTA and the decoder state machine that can enforce them.
 *
 *   rl:  <think> free text </think> <answer> LABEL </answer> <eos>
 *   gta: <guess> LABEL </guess> <think> free text </think> <answer> LABEL </answer> <eos>
 *
 * In `structured` decoding the machine says, before every token, which tokens are allowed: tags are
 * forced, LABEL is restricted to the label token sequences (a trie), and think is free text (any
 * non-special token) up to a length. Sampling and the training log-probabilities both use the same
 * restricted distribution, so PPO ratios compare like with like. In `free` decoding every token is
 * allowed and the format reward has to teach the structure.
 */
import type { Completion } from '../config/modes.js';
import type { TextTokenizer } from '../tokenizer/types.js';

/** The structured completion formats (src/config/modes.ts lists which mode uses which). */
export type CompletionFormat = Exclude<Completion, 'answer'>;
export type Decoding = 'free' | 'structured';
export type Span = 'guess' | 'think' | 'answer' | 'tag';

/**
 * Which tokens may come next: every token ('all'), every non-special token plus some tags ('text'),
 * or an explicit list.
 */
export type Allowed = { kind: 'all' } | { kind: 'text'; plus: number[] } | { kind: 'only'; ids: number[] };

interface TrieNode {
  next: Map<number, TrieNode>;
  terminal: boolean;
}

export interface StructureSpec {
  format: CompletionFormat;
  labels: number[][];
  thinkMaxTokens: number;
  tags: { guessOpen: number; guessClose: number; thinkOpen: number; thinkClose: number; answerOpen: number; answerClose: number; eos: number };
  /** Ids of all special tokens (excluded from free text). */
  specials: number[];
}

export function structureSpec(tok: TextTokenizer, format: CompletionFormat, labels: string[], thinkMaxTokens: number): StructureSpec {
  return {
    format,
    labels: labels.map((l) => tok.encode(l)),
    thinkMaxTokens,
    tags: {
      guessOpen: tok.id('<guess>'),
      guessClose: tok.id('</guess>'),
      thinkOpen: tok.id('<think>'),
      thinkClose: tok.id('</think>'),
      answerOpen: tok.id('<answer>'),
      answerClose: tok.id('</answer>'),
      eos: tok.eosId,
    },
    // pad, bos, eos and the tags; a Hugging Face model's own special and unused ids too
    specials: tok.specialIds(),
  };
}

/** The longest completion the structured format can produce. */
export function maxStructuredLength(s: StructureSpec): number {
  const label = Math.max(...s.labels.map((l) => l.length));
  return (s.format === 'gta' ? label + 2 : 0) + s.thinkMaxTokens + 2 + label + 2 + 1;
}

function buildTrie(seqs: number[][]): TrieNode {
  const root: TrieNode = { next: new Map(), terminal: false };
  for (const seq of seqs) {
    let n = root;
    for (const t of seq) {
      let c = n.next.get(t);
      if (!c) n.next.set(t, (c = { next: new Map(), terminal: false }));
      n = c;
    }
    n.terminal = true;
  }
  return root;
}

type Phase = 'guessOpen' | 'guess' | 'thinkOpen' | 'think' | 'answerOpen' | 'answer' | 'eos' | 'done';

/** One row's position in the structure; `allowed()` before each token, `push()` after it. */
export class StructuredState {
  private phase: Phase;
  private node: TrieNode;
  private thinkLen = 0;
  private readonly trie: TrieNode;

  constructor(private readonly s: StructureSpec) {
    this.trie = buildTrie(s.labels);
    this.node = this.trie;
    this.phase = s.format === 'gta' ? 'guessOpen' : 'thinkOpen';
  }

  get done(): boolean {
    return this.phase === 'done';
  }

  /** Whether every token from here to EOS is forced (the rest of the completion is already known). */
  forcedToEnd(): boolean {
    const sim = Object.assign(Object.create(StructuredState.prototype) as StructuredState, this);
    for (;;) {
      const a = sim.allowed();
      if (a.kind !== 'only' || a.ids.length !== 1) return false;
      if (a.ids[0] === this.s.tags.eos) return true;
      sim.push(a.ids[0]);
    }
  }

  /** The span the next token belongs to. */
  span(): Span {
    return this.phase === 'guess' || this.phase === 'guessOpen' ? 'guess' : this.phase === 'think' ? 'think' : this.phase === 'answer' ? 'answer' : 'tag';
  }

  allowed(): Allowed {
    const t = this.s.tags;
    switch (this.phase) {
      case 'guessOpen':
        return { kind: 'only', ids: [t.guessOpen] };
      case 'thinkOpen':
        return { kind: 'only', ids: [t.thinkOpen] };
      case 'answerOpen':
        return { kind: 'only', ids: [t.answerOpen] };
      case 'eos':
        return { kind: 'only', ids: [t.eos] };
      case 'think':
        return this.thinkLen >= this.s.thinkMaxTokens ? { kind: 'only', ids: [t.thinkClose] } : { kind: 'text', plus: [t.thinkClose] };
      case 'guess':
      case 'answer': {
        const ids = [...this.node.next.keys()];
        if (this.node.terminal) ids.push(this.phase === 'guess' ? t.guessClose : t.answerClose);
        return { kind: 'only', ids };
      }
      case 'done':
        return { kind: 'only', ids: [t.eos] };
    }
  }

  push(token: number): void {
    const t = this.s.tags;
    switch (this.phase) {
      case 'guessOpen':
        this.phase = 'guess';
        this.node = this.trie;
        return;
      case 'thinkOpen':
        this.phase = 'think';
        return;
      case 'answerOpen':
        this.phase = 'answer';
        this.node = this.trie;
        return;
      case 'think':
        if (token === t.thinkClose) this.phase = 'answerOpen';
        else this.thinkLen++;
        return;
      case 'guess':
      case 'answer': {
        const close = this.phase === 'guess' ? t.guessClose : t.answerClose;
        if (token === close) this.phase = this.phase === 'guess' ? 'thinkOpen' : 'eos';
        else this.node = this.node.next.get(token) ?? this.node;
        return;
      }
      case 'eos':
        this.phase = 'done';
        return;
      case 'done':
        return;
    }
  }
}

/** Number of choices an Allowed set offers (1 means the token was forced). */
export function choiceCount(a: Allowed, vocabSize: number, specials: number): number {
  if (a.kind === 'all') return vocabSize;
  if (a.kind === 'text') return vocabSize - specials + a.plus.length;
  return a.ids.length;
}

/** What a completion says: guess and answer label indices (null if missing or not a label) and whether it is well formed. */
export interface Parsed {
  guess: number | null;
  answer: number | null;
  wellFormed: boolean;
}

/**
 * Parses a completion by its tag ids. Well formed means exactly the format's tag sequence, in order,
 * with a known label inside guess and answer, ending at EOS.
 */
export function parseCompletion(s: StructureSpec, tokens: number[]): Parsed {
  const t = s.tags;
  const labelOf = (ids: number[]) => {
    const i = s.labels.findIndex((l) => l.length === ids.length && l.every((x, k) => x === ids[k]));
    return i >= 0 ? i : null;
  };
  const between = (open: number, close: number, from: number) => {
    const a = tokens.indexOf(open, from);
    if (a < 0) return null;
    const b = tokens.indexOf(close, a + 1);
    if (b < 0) return null;
    return { ids: tokens.slice(a + 1, b), start: a, end: b };
  };
  const guess = s.format === 'gta' ? between(t.guessOpen, t.guessClose, 0) : null;
  const think = between(t.thinkOpen, t.thinkClose, guess ? guess.end + 1 : 0);
  const answer = between(t.answerOpen, t.answerClose, think ? think.end + 1 : 0);
  const g = guess ? labelOf(guess.ids) : null;
  const a = answer ? labelOf(answer.ids) : null;
  const tagSet = new Set(Object.values(t));
  const expected = s.format === 'gta' ? [t.guessOpen, t.guessClose, t.thinkOpen, t.thinkClose, t.answerOpen, t.answerClose, t.eos] : [t.thinkOpen, t.thinkClose, t.answerOpen, t.answerClose, t.eos];
  const seen = tokens.filter((x) => tagSet.has(x));
  const wellFormed =
    seen.length === expected.length &&
    seen.every((x, i) => x === expected[i]) &&
    tokens[tokens.length - 1] === t.eos &&
    a !== null &&
    (s.format === 'rl' || g !== null) &&
    !(think?.ids ?? []).some((x) => s.specials.includes(x));
  return { guess: g, answer: a, wellFormed };
}
