/**
 * Texts to label (`gta predict --input`): a CSV, TSV or JSONL file (optionally gzipped) with a text
 * column, or one text per line (a file of another name, or `-` for standard input). Every text is
 * checked before any is labelled, so a bad row stops the command before it writes anything.
 */
import { readFile } from 'node:fs/promises';
import { atLine, GtaError } from '../util/errors.js';
import { formatFromName, readTable } from './read_table.js';

export interface InputText {
  /** 1-based line the row starts on, for messages and the output. */
  line: number;
  text: string;
}

export async function readTexts(input: string, textColumn: string): Promise<{ source: string; texts: InputText[] }> {
  if (input === '-') return { source: '<stdin>', texts: lines('<stdin>', await readStdin()) };
  if (formatFromName(input) === undefined) return { source: input, texts: lines(input, await readPlain(input)) };
  const t = await readTable(input);
  if (t.format !== 'jsonl' && !t.columns.includes(textColumn)) throw atLine(t.file, t.headerLine, `no column '${textColumn}' (columns: ${t.columns.join(', ')}); name the text column with --text-column`);
  const texts = t.rows.map((row) => {
    const v = row.values[textColumn];
    if (v === undefined) throw atLine(t.file, row.line, `no column '${textColumn}' (columns: ${Object.keys(row.values).join(', ')}); name the text column with --text-column`);
    if (typeof v !== 'string') throw atLine(t.file, row.line, `column '${textColumn}' must be a string, got ${JSON.stringify(v)}`);
    if (v.trim() === '') throw atLine(t.file, row.line, 'empty text');
    return { line: row.line, text: v };
  });
  return { source: input, texts };
}

/** One text a line; the newline at the end of the last is not an empty text, a blank line is. */
function lines(source: string, text: string): InputText[] {
  const all = text.replace(/^\ufeff/, '').split(/\r?\n/);
  if (all.length > 0 && all[all.length - 1] === '') all.pop();
  if (all.length === 0) throw new GtaError(`${source}: no texts`);
  return all.map((t, i) => {
    if (t.trim() === '') throw atLine(source, i + 1, 'empty text (one text a line)');
    return { line: i + 1, text: t };
  });
}

async function readPlain(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new GtaError(code === 'ENOENT' ? `${file}: no such file` : `${file}: cannot read (${code ?? String(e)})`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
