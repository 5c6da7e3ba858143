/**
 * Read one data file (CSV, TSV or JSONL, each optionally gzipped) into rows that remember the physical
 * line they start on, so every later complaint about a row can point at `file:line`.
 */
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import Papa from 'papaparse';
import { atLine, GtaError } from '../util/errors.js';
import { bareObject } from '../util/key_path.js';
import { readRegularFile } from '../util/regular_file.js';
import { duplicateKey } from './json_keys.js';

export type TableFormat = 'csv' | 'tsv' | 'jsonl';

export interface Row {
  /** 1-based line on which the row starts (a quoted field may carry it over several lines). */
  line: number;
  /** CSV/TSV values are always strings; JSONL values are whatever the JSON held. */
  values: Record<string, unknown>;
}

export interface Table {
  file: string;
  format: TableFormat;
  /** Header names (CSV/TSV) or the keys of the first object (JSONL). */
  columns: string[];
  /** Line of the header row (CSV/TSV), or of the first object (JSONL). */
  headerLine: number;
  rows: Row[];
}

const gunzipAsync = promisify(gunzip);

/** The format named by the extension, ignoring a trailing .gz; undefined if it names none. */
export function formatFromName(file: string): TableFormat | undefined {
  const m = /\.(csv|tsv|jsonl)(\.gz)?$/i.exec(file);
  return m ? (m[1].toLowerCase() as TableFormat) : undefined;
}

export async function readTable(file: string, format: 'auto' | TableFormat = 'auto'): Promise<Table> {
  const fmt = format === 'auto' ? formatFromName(file) : format;
  if (fmt === undefined) {
    throw new GtaError(`${file}: cannot tell the format from the name; use .csv, .tsv or .jsonl (optionally .gz) or set format`);
  }
  const text = await readText(file);
  if (text.trim() === '') throw new GtaError(`${file}: file is empty`);
  const table = fmt === 'jsonl' ? parseJsonl(file, text) : parseDelimited(file, text, fmt);
  if (table.rows.length === 0) {
    throw new GtaError(fmt === 'jsonl' ? `${file}: file is empty` : `${file}: no rows after the header`);
  }
  return table;
}

/** Whole file as a string: gunzipped when it starts with the gzip magic bytes, UTF-8, BOM dropped. */
async function readText(file: string): Promise<string> {
  // a FIFO or device would never end: only a regular file is read
  let buf = await readRegularFile(file);
  // Sniff the magic bytes rather than trust the name, so `data.gz` renamed to `data.csv` still loads.
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = await gunzipAsync(buf);
    } catch (e) {
      throw new GtaError(`${file}: broken gzip data (${(e as Error).message})`);
    }
  }
  const utf16 = utf16Order(buf);
  if (utf16) throw new GtaError(`${file}: looks like UTF-16 (${utf16}) text, not UTF-8; save the file as UTF-8`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    // Point at the first undecodable byte: the lenient decoder turns it into U+FFFD.
    const loose = buf.toString('utf8');
    throw atLine(file, lineOf(loose, loose.indexOf('\ufffd')), 'not valid UTF-8 text (save the file as UTF-8)');
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/**
 * 'little-endian' or 'big-endian' when `buf` is UTF-16 text: a UTF-16 byte-order mark, or (without
 * one) NUL bytes at every other position of its first bytes, as ASCII text in UTF-16 has. NUL is
 * valid UTF-8, so such a file used to decode "fine" and fail later as a field-count error.
 */
function utf16Order(buf: Buffer): 'little-endian' | 'big-endian' | undefined {
  if (buf.length >= 2 && buf[0] === 0xff && buf[1] === 0xfe) return 'little-endian';
  if (buf.length >= 2 && buf[0] === 0xfe && buf[1] === 0xff) return 'big-endian';
  const n = Math.min(buf.length, 512) & ~1;
  if (n < 4) return undefined;
  let even = 0;
  let odd = 0;
  for (let i = 0; i < n; i += 2) {
    if (buf[i] === 0) even++;
    if (buf[i + 1] === 0) odd++;
  }
  // most characters of a text file are ASCII: their high byte is the NUL
  if (odd >= 0.4 * (n / 2) && even === 0) return 'little-endian';
  if (even >= 0.4 * (n / 2) && odd === 0) return 'big-endian';
  return undefined;
}

/** 1-based line number of a character offset. */
function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/**
 * CSV/TSV via papaparse (RFC 4180 quoting: fields may hold delimiters, quotes doubled, newlines). We
 * parse with header: false and handle the header ourselves so that every physical row, blank ones
 * included, reaches `step`: then the row's start offset is exactly the previous row's end cursor and
 * counting '\n' up to it gives its line, which papaparse does not report.
 */
function parseDelimited(file: string, text: string, format: 'csv' | 'tsv'): Table {
  const delimiter = format === 'tsv' ? '\t' : ',';
  let columns: string[] | undefined;
  let headerLine = 0;
  const rows: Row[] = [];
  let failure: GtaError | undefined;
  // Line counting is incremental (offsets only grow) so the whole file is scanned once.
  let start = 0;
  let line = 1;
  let counted = 0;

  Papa.parse<string[]>(text, {
    delimiter,
    header: false,
    skipEmptyLines: false,
    step(result, parser) {
      for (; counted < start; counted++) if (text.charCodeAt(counted) === 10) line++;
      const rowLine = line;
      start = result.meta.cursor;
      const fields = result.data;
      const err = result.errors[0];
      if (err) {
        const what = err.type === 'Quotes' ? `broken quoting (${err.message})` : err.message;
        failure = atLine(file, rowLine, what);
        parser.abort();
        return;
      }
      // Blank and whitespace-only lines (e.g. the final newline) are not rows.
      if (fields.every((f) => f.trim() === '')) return;
      if (columns === undefined) {
        columns = fields.map((f) => f.trim());
        headerLine = rowLine;
        return;
      }
      if (fields.length !== columns.length) {
        const hint = format === 'csv' ? '; quote fields that contain commas' : '';
        failure = atLine(file, rowLine, `expected ${columns.length} fields (${columns.join(', ')}) but found ${fields.length}${hint}`);
        parser.abort();
        return;
      }
      // no prototype: a column named __proto__ or constructor is a column like any other
      const values = bareObject();
      columns.forEach((c, i) => (values[c] = fields[i]));
      rows.push({ line: rowLine, values });
    },
  });
  if (failure) throw failure;
  if (columns === undefined) throw new GtaError(`${file}: file is empty`);
  return { file, format, columns, headerLine, rows };
}

/** One JSON object per line; blank lines skipped. */
function parseJsonl(file: string, text: string): Table {
  const lines = text.split('\n');
  const rows: Row[] = [];
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].endsWith('\r') ? lines[i].slice(0, -1) : lines[i];
    if (raw.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      throw atLine(file, i + 1, `not valid JSON: ${(e as Error).message}`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
      throw atLine(file, i + 1, `not valid JSON: expected an object per line, got ${got}`);
    }
    const dup = duplicateKey(raw);
    if (dup !== undefined) throw atLine(file, i + 1, `key '${dup}' appears twice in one object (JSON keeps only the last)`);
    rows.push({ line: i + 1, values: value as Record<string, unknown> });
  }
  const first = rows[0];
  return { file, format: 'jsonl', columns: first ? Object.keys(first.values) : [], headerLine: first?.line ?? 1, rows };
}
