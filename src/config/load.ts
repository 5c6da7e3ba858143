/**
 * Reads a YAML config, applies `--set key.path=value` overrides, validates it against a zod schema and
 * returns the typed config with defaults applied. A failure is a GtaError that names the file, line and
 * column (or the --set flag) and the key path of every problem at once, one line each, with the nearest
 * valid key for an unknown one ("did you mean train.optim.lr?"). One problem is one line; several are a
 * first line `N problems in FILE:` and then one indented line per problem, in file order.
 */
import fs from 'node:fs';
import { LineCounter, parseDocument, parse as parseYamlValue, stringify, isMap, type Document } from 'yaml';
import type { z } from 'zod';
import { GtaError } from '../util/errors.js';
import { readRegularFileSync } from '../util/regular_file.js';
import { bareObject, forbiddenPart, withoutPrototypes } from '../util/key_path.js';
import { keyPaths, suggestKeys } from './keys.js';

/**
 * YAML aliases a config may expand (the yaml package's maxAliasCount): a real config uses a handful;
 * nested anchors that expand exponentially ("billion laughs") are refused instead of eating memory.
 */
const MAX_ALIAS_COUNT = 100;

export interface LoadedConfig<T> {
  config: T;
  /** The config with defaults applied, as YAML: saved in the run directory. */
  resolvedYaml: string;
}

export function loadConfig<S extends z.ZodType>(schema: S, file: string, overrides: string[] = []): LoadedConfig<z.infer<S>> {
  let text: string;
  try {
    text = readRegularFileSync(file).toString('utf8');
  } catch (e) {
    // a missing file keeps its old message; a FIFO or folder says what it is
    if (!fs.existsSync(file)) throw new GtaError(`${file}: no such config file`);
    throw e;
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const pos = lineCounter.linePos(e.pos[0]);
    const what = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    throw new GtaError(`${file}:${pos.line}:${pos.col}: YAML syntax error: ${what}`);
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {};
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    if (/alias/i.test(msg)) throw new GtaError(`${file}: too many YAML aliases: they would expand to more than ${MAX_ALIAS_COUNT} copies (${msg})`);
    throw new GtaError(`${file}: cannot read the YAML (${msg})`);
  }
  if (!isPlainObject(raw)) throw new GtaError(`${file}: the config must be a YAML mapping of keys to values`);
  // objects without prototypes: no key of the file or of a --set can reach Object.prototype
  const tree = withoutPrototypes(raw, (at) => {
    throw new GtaError(`${locate(file, doc, lineCounter, at).text}: ${at.join('.')}: '${at.at(-1)}' cannot be a config key`);
  }) as Record<string, unknown>;
  raw = tree;
  const overridden = new Map<string, { path: string[]; text: string }>();
  for (const o of overrides) {
    const { path, value, text } = parseOverride(o);
    setPath(tree, path, value);
    overridden.set(path.join('.'), { path, text });
  }
  let result = schema.safeParse(raw);
  // `--set prompt.template=Review: {text}` is YAML for a mapping, but the key takes a string: where the
  // schema wants a string and a --set value read as YAML is something else, the value is its text as written.
  for (let tries = 0; !result.success && tries < overridden.size; tries++) {
    const asText = (result.error.issues as Issue[])
      .filter((i) => i.code === 'invalid_type' && i.expected === 'string')
      .map((i) => overridden.get(i.path.map(String).join('.')))
      .filter((o) => o !== undefined && typeof getPath(raw, o.path) !== 'string');
    if (asText.length === 0) break;
    for (const o of asText) setPath(tree, o!.path, o!.text);
    result = schema.safeParse(raw);
  }
  if (!result.success) {
    const paths = keyPaths(schema);
    const problems = (result.error.issues as Issue[])
      .flatMap((issue) => describeIssue(issue, raw, paths))
      .map((p, order) => {
        // A --set key sorts after the file's lines; within the file, by position, then zod's order.
        const flag = setBy(overridden, p.key);
        const at = flag !== undefined ? { text: `--set ${flag}`, line: Infinity, col: 0 } : locate(file, doc, lineCounter, p.nodePath);
        return { line: at.line, col: at.col, order, text: `${at.text}: ${p.key || '(top level)'}: ${p.message}` };
      })
      .sort((a, b) => a.line - b.line || a.col - b.col || a.order - b.order);
    throw new GtaError(formatProblems(file, problems.map((p) => p.text)));
  }
  return { config: result.data, resolvedYaml: stringify(result.data) };
}

/**
 * The --set key path a problem at `key` comes from: the same key, one below it (`--set data.labels.0=x`
 * makes data.labels a mapping) or one above it (`--set data={...}` holds data.labels).
 */
function setBy(overridden: Map<string, unknown>, key: string): string | undefined {
  for (const o of overridden.keys()) if (o === key || o.startsWith(`${key}.`) || key.startsWith(`${o}.`)) return o;
  return undefined;
}

/** One line for one problem; otherwise a count, then each problem on its own line in file order. */
function formatProblems(file: string, problems: string[]): string {
  const lines = [...new Set(problems)];
  if (lines.length === 1) return lines[0];
  return [`${lines.length} problems in ${file}:`, ...lines.map((l) => `  ${l}`)].join('\n');
}

interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  keys?: string[];
  expected?: string;
  values?: unknown[];
}

interface Problem {
  key: string;
  nodePath: string[];
  message: string;
}

/** Turns a zod issue into the keys it is about and a message a person can act on (one per unknown key). */
function describeIssue(issue: Issue, raw: unknown, paths: string[]): Problem[] {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys' && issue.keys) {
    return issue.keys.map((k) => {
      const near = suggestKeys(k, path.join('.'), paths);
      const hint = near.length ? ` (did you mean ${near.join(' or ')}?)` : '';
      return { key: [...path, k].join('.'), nodePath: [...path, k], message: `unknown key${hint}` };
    });
  }
  return [describeOne(issue, raw, path)];
}

function describeOne(issue: Issue, raw: unknown, path: string[]): Problem {
  if (issue.code === 'invalid_type') {
    const got = describeValue(getPath(raw, path));
    if (got === 'missing') return { key: path.join('.'), nodePath: path.slice(0, -1), message: `required ${issue.expected ?? 'value'} is missing` };
    const v = getPath(raw, path);
    if (typeof v === 'number' && !Number.isFinite(v)) return { key: path.join('.'), nodePath: path, message: `expected a finite number, got ${yamlNumber(v)}` };
    return { key: path.join('.'), nodePath: path, message: `expected ${issue.expected ?? 'another type'}, got ${got}` };
  }
  if (issue.code === 'invalid_value' && issue.values) {
    return {
      key: path.join('.'),
      nodePath: path,
      message: `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(getPath(raw, path))}`,
    };
  }
  return { key: path.join('.'), nodePath: path, message: issue.message };
}

/** A non-finite number as YAML writes it (JSON has none: .inf once read "number null"). */
function yamlNumber(v: number): string {
  return Number.isNaN(v) ? '.nan' : v > 0 ? '.inf' : '-.inf';
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'number' && !Number.isFinite(v)) return `number ${yamlNumber(v)}`;
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** `file:line:col` of the deepest node on the path that exists in the YAML document. */
function locate(file: string, doc: Document, lc: LineCounter, path: string[]): { text: string; line: number; col: number } {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
    // For a key that is present, point at its key rather than its value when we can find the pair.
    const pairKey = n > 0 ? findKeyNode(doc, path.slice(0, n)) : undefined;
    const range = pairKey?.range ?? node?.range;
    if (range) {
      const p = lc.linePos(range[0]);
      return { text: `${file}:${p.line}:${p.col}`, line: p.line, col: p.col };
    }
  }
  return { text: file, line: 0, col: 0 };
}

function findKeyNode(doc: Document, path: string[]): { range?: [number, number, number] } | undefined {
  const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
  if (!isMap(parent)) return undefined;
  const last = path[path.length - 1];
  const pair = parent.items.find((it) => (it.key as { value?: unknown })?.value === last);
  return pair?.key as { range?: [number, number, number] } | undefined;
}

function parseOverride(o: string): { path: string[]; value: unknown; text: string } {
  const eq = o.indexOf('=');
  if (eq <= 0) throw new GtaError(`--set ${o}: expected key.path=value`);
  const path = o.slice(0, eq).trim().split('.');
  if (path.some((p) => p === '')) throw new GtaError(`--set ${o}: empty key in '${o.slice(0, eq)}'`);
  const bad = forbiddenPart(path);
  if (bad !== undefined) throw new GtaError(`--set ${o.slice(0, eq)}: '${bad}' cannot be a config key`);
  const text = o.slice(eq + 1);
  let value: unknown;
  try {
    // Values are YAML, so numbers, booleans, lists ([a, b]) and quoted strings all work.
    value = parseYamlValue(text);
  } catch {
    // Not YAML (`Review: {text`, `a: b: c`): the text as written, a plain string.
    value = text;
  }
  // a value that is a mapping ({__proto__: ...}) is held to the same rule as the key path
  value = withoutPrototypes(value, (at) => {
    throw new GtaError(`--set ${[...path, ...at].join('.')}: '${at.at(-1)}' cannot be a config key`);
  });
  return { path, value: value === null && text.trim() === '' ? '' : value, text };
}

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let cur: Record<string, unknown> = obj;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i];
    if (!Object.hasOwn(cur, key)) cur[key] = bareObject();
    const next = cur[key];
    if (Array.isArray(next)) throw new GtaError(`--set ${path.join('.')}: '${key}' is a list; set it whole (--set ${path.slice(0, i + 1).join('.')}=[a, b])`);
    if (!isPlainObject(next)) throw new GtaError(`--set ${path.join('.')}: '${key}' is not a mapping`);
    cur = next;
  }
  cur[path[path.length - 1]] = value;
}

function getPath(obj: unknown, path: string[]): unknown {
  let cur = obj;
  for (const k of path) {
    if (!isPlainObject(cur) && !Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
