/** A tiny synthetic sentiment task: filler words plus one keyword that decides the label. */
import fs from 'node:fs';
import path from 'node:path';
import { Rng } from '../../src/util/rng.js';

const FILLER = ['the', 'a', 'movie', 'film', 'plot', 'was', 'is', 'very', 'quite', 'story', 'actor', 'scene'];
const POS = ['good', 'great', 'fine', 'lovely'];
const NEG = ['bad', 'awful', 'poor', 'dull'];

export function syntheticRows(n: number, seed: number): { text: string; label: string }[] {
  const rng = new Rng(seed);
  const rows: { text: string; label: string }[] = [];
  for (let i = 0; i < n; i++) {
    const positive = rng.next() < 0.5;
    const words = Array.from({ length: 3 + rng.int(4) }, () => FILLER[rng.int(FILLER.length)]);
    const key = positive ? POS[rng.int(POS.length)] : NEG[rng.int(NEG.length)];
    words.splice(rng.int(words.length + 1), 0, key);
    rows.push({ text: words.join(' '), label: positive ? 'positive' : 'negative' });
  }
  return rows;
}

/** Writes train/dev/test CSVs into `dir` and returns their paths. */
export function writeSyntheticCsv(dir: string, sizes = { train: 600, dev: 100, test: 100 }): Record<'train' | 'dev' | 'test', string> {
  const out = {} as Record<'train' | 'dev' | 'test', string>;
  (['train', 'dev', 'test'] as const).forEach((split, k) => {
    const file = path.join(dir, `${split}.csv`);
    const rows = syntheticRows(sizes[split], 100 + k);
    fs.writeFileSync(file, 'text,label\n' + rows.map((r) => `${r.text},${r.label}`).join('\n') + '\n');
    out[split] = file;
  });
  return out;
}
