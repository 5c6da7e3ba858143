/**
 * Renders comparison results: per-dataset convergence plots (SVG + PNG) and one self-contained
 * report.html. Plots are vega-lite specs compiled to vega and rendered headless (renderer 'none',
 * so no canvas/DOM is needed); resvg turns the SVG into a PNG with no browser or native build step.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { Resvg } from '@resvg/resvg-js';

export interface Stat { mean: number; std: number; n: number }
/** One point of a convergence curve: a (dataset, arm, step) with mean and std over seeds. */
export interface CurvePoint { dataset: string; arm: string; step: number; metrics: Record<string, Stat> }  // keys like 'eval/accuracy', 'eval/f1_weighted', 'reward/total/mean'
/** One row of the comparison table. */
export interface CompareRow { dataset: string; arm: string; seeds: number; columns: Record<string, Stat | number | null> }  // e.g. 'final accuracy': Stat, 'best accuracy': Stat, 'steps to threshold': Stat|null, 'AUC': Stat, 'tokens': number
/** One pair as report.html shows it first (stats_markdown.ts pairRows makes them): the difference and its intervals in points, and a verdict in plain words. */
export interface PairRow {
  dataset: string;
  pair: string;
  split: string;
  seeds: number;
  /** "-3.4 [-5.4, -1.4]": points of accuracy, the t interval over seeds. */
  difference: string;
  bootstrap: string;
  verdict: string;
  /** For colour: a clear gain of a over b, a clear loss, or neither. */
  tone: 'better' | 'worse' | 'unclear';
}
/** `pairs`: the paired differences, shown first. */
export interface ReportInput { title: string; rows: CompareRow[]; curves: CurvePoint[]; pairs?: PairRow[]; notes?: string[] }
export interface RenderedFiles { svg: string[]; png: string[]; html: string }

/** Fixed colours for the arms named after the modes, so sft/rl/gta look the same in every plot and report. */
const MODE_COLOURS: Record<string, string> = { sft: '#4c78a8', rl: '#f58518', gta: '#54a24b' };
/** Colours handed out, in order, to any other arms (tableau10 minus the three above). */
const EXTRA_COLOURS = ['#e45756', '#72b7b2', '#eeca3b', '#b279a2', '#ff9da6', '#9d755d', '#bab0ac'];
/** A font Debian ships (fonts-dejavu-core), so resvg's PNG text matches the SVG's metrics. */
const FONT = 'DejaVu Sans';

/**
 * The plots made per dataset: which metric, file suffix, title and axis title. Axis titles stay
 * short: without a canvas vega estimates text widths generously, and a y title longer than the
 * plot pushes the chart title out of the picture.
 */
const PLOTS = [
  { metric: 'eval/accuracy', x: 'step', suffix: 'accuracy', title: 'eval accuracy', yTitle: 'eval accuracy' },
  // the same curve against the other budgets (a mode's step is not the same amount of data or time)
  { metric: 'eval/accuracy', x: 'examples_seen', suffix: 'accuracy-by-examples', title: 'eval accuracy by labelled examples', yTitle: 'eval accuracy' },
  { metric: 'eval/accuracy', x: 'tokens_seen', suffix: 'accuracy-by-tokens', title: 'eval accuracy by tokens', yTitle: 'eval accuracy' },
  { metric: 'eval/accuracy', x: 'time_s', suffix: 'accuracy-by-seconds', title: 'eval accuracy by wall seconds', yTitle: 'eval accuracy' },
  { metric: 'reward/total/mean', x: 'step', suffix: 'reward', title: 'mean total reward', yTitle: 'mean total reward' },
] as const;
const X_TITLES: Record<(typeof PLOTS)[number]['x'], string> = { step: 'step', examples_seen: 'labelled examples', tokens_seen: 'tokens', time_s: 'seconds' };

/** Writes, per dataset, <dataset>-accuracy.svg/.png (eval/accuracy vs step: one line per arm with a mean +- std band), the same against labelled examples, tokens and seconds when the curves have them (-accuracy-by-examples, -by-tokens, -by-seconds), and, when any arm has 'reward/total/mean', <dataset>-reward.svg/.png; and report.html with the table and the SVGs inlined (no external scripts, styles or images). */
export async function renderReport(
  outDir: string,
  input: ReportInput,
  opts?: { width?: number; height?: number },
): Promise<RenderedFiles> {
  const width = opts?.width ?? 640;
  const height = opts?.height ?? 360;
  fs.mkdirSync(outDir, { recursive: true });

  // One arm -> colour mapping for the whole report, so an arm keeps its colour across datasets.
  const arms = orderArms(unique([...input.rows.map((r) => r.arm), ...input.curves.map((c) => c.arm)]));
  const colours = arms.map((m, i) => MODE_COLOURS[m] ?? EXTRA_COLOURS[i % EXTRA_COLOURS.length]);

  const files: RenderedFiles = { svg: [], png: [], html: path.join(outDir, 'report.html') };
  const figures: string[] = [];
  for (const dataset of unique(input.curves.map((c) => c.dataset))) {
    for (const plot of PLOTS) {
      const values = input.curves
        .filter((c) => c.dataset === dataset && c.metrics[plot.metric] !== undefined && (plot.x === 'step' || c.metrics[plot.x] !== undefined))
        .map((c) => {
          const s = c.metrics[plot.metric];
          const std = Number.isFinite(s.std) ? s.std : 0; // one seed: no band rather than NaN
          // off the step axis, a point sits at the seeds' mean budget spent by that step
          return { arm: c.arm, step: plot.x === 'step' ? c.step : c.metrics[plot.x].mean, mean: s.mean, lo: s.mean - std, hi: s.mean + std };
        })
        .sort((a, b) => a.step - b.step);
      if (values.length === 0) continue; // e.g. no reward curve when only sft ran
      const title = `${dataset}: ${plot.title}`;
      const svg = await renderSvg(lineWithBand(values, title, X_TITLES[plot.x], plot.yTitle, arms, colours, width, height));
      const base = path.join(outDir, `${safeName(dataset)}-${plot.suffix}`);
      fs.writeFileSync(`${base}.svg`, svg);
      fs.writeFileSync(`${base}.png`, svgToPng(svg, width, height));
      files.svg.push(`${base}.svg`);
      files.png.push(`${base}.png`);
      figures.push(`<figure>\n${prefixIds(svg, `f${figures.length}-`)}\n<figcaption>${escapeHtml(title)}</figcaption>\n</figure>`);
    }
  }
  fs.writeFileSync(files.html, reportHtml(input, figures));
  return files;
}

/** The table as GitHub markdown (mean ± std with 4 decimals for rates, integers for counts; '–' for null). */
export function markdownTable(rows: CompareRow[]): string {
  const { header, body } = tableCells(rows);
  // A '|' inside a cell would split it; markdown's escape for that is '\|'.
  const line = (cells: string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...body.map(line)].join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------

/** Header and formatted cells shared by the markdown and HTML tables, so both say the same. */
function tableCells(rows: CompareRow[]): { header: string[]; body: string[][] } {
  const columns = unique(rows.flatMap((r) => Object.keys(r.columns)));
  return {
    header: ['dataset', 'arm', 'seeds', ...columns],
    body: rows.map((r) => [r.dataset, r.arm, String(r.seeds), ...columns.map((c) => formatCell(c, r.columns[c]))]),
  };
}

/** Column names holding counts (steps, tokens...), shown as integers even when averaged over seeds. */
const COUNT_COLUMN = /\b(steps?|tokens?|counts?|examples?|epochs?|seeds?)\b/i;

/** Column names holding seconds: one decimal is all a wall time can tell. */
const SECONDS_COLUMN = /\b(seconds?|secs?|time_s|wall_time_s)\b/i;

function formatCell(column: string, v: Stat | number | null | undefined): string {
  if (v === null || v === undefined) return '–';
  const count = COUNT_COLUMN.test(column) || (typeof v === 'number' && Number.isInteger(v));
  const seconds = SECONDS_COLUMN.test(column);
  const fmt = (x: number) => (!Number.isFinite(x) ? '–' : seconds ? x.toFixed(1) : count ? String(Math.round(x)) : x.toFixed(4));
  return typeof v === 'number' ? fmt(v) : `${fmt(v.mean)} ± ${fmt(v.std)}`;
}

interface BandPoint { arm: string; step: number; mean: number; lo: number; hi: number }

/** Vega-lite: a translucent mean ± std area under a mean line with points, one colour per arm. */
function lineWithBand(
  values: BandPoint[], title: string, xTitle: string, yTitle: string, arms: string[], colours: string[], width: number, height: number,
): TopLevelSpec {
  // Only this plot's arms in the legend, each with its report-wide colour.
  const shown = arms.filter((m) => values.some((v) => v.arm === m));
  const range = shown.map((m) => colours[arms.indexOf(m)]);
  const color = { field: 'arm', type: 'nominal', title: 'arm', scale: { domain: shown, range } } as const;
  const x = { field: 'step', type: 'quantitative', title: xTitle } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle: 'line: mean over seeds; band: mean ± std' },
    width,
    height,
    // 'fit' + 'padding': the whole picture (axes, legend, title) is width x height, not just the plot area.
    autosize: { type: 'fit', contains: 'padding' },
    background: 'white',
    // Opaque legend symbols: the legend is shared with the band layer, whose opacity would wash them out.
    config: { font: FONT, legend: { symbolOpacity: 1 } },
    data: { values: values as unknown as Record<string, unknown>[] },
    layer: [
      {
        mark: { type: 'area', opacity: 0.2 },
        encoding: { x, y: { field: 'lo', type: 'quantitative', title: yTitle, scale: { zero: false } }, y2: { field: 'hi' }, color },
      },
      {
        mark: { type: 'line', point: true },
        encoding: { x, y: { field: 'mean', type: 'quantitative', title: yTitle }, color },
      },
    ],
  };
}

async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize(); // drops timers/listeners so the process can exit
  }
}

/** PNG of exactly width x height: vega's SVG already has that size, fitTo guards against rounding. */
function svgToPng(svg: string, width: number, height: number): Buffer {
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'width', value: width },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: FONT, sansSerifFamily: FONT },
  });
  const png = resvg.render();
  if (png.width !== width || png.height !== height) {
    throw new Error(`PNG is ${png.width}x${png.height}, expected ${width}x${height} (the SVG's size is off)`);
  }
  return png.asPng();
}

/** Inline SVGs share one id space in HTML: prefix each figure's ids so clip paths don't collide. */
function prefixIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, (_m, id: string) => `id="${prefix}${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_m, id: string) => `url(#${prefix}${id})`)
    .replace(/href="#([^"]+)"/g, (_m, id: string) => `href="#${prefix}${id}"`);
}

/**
 * A column of the arms table is about the cost of reaching the threshold (steps, seconds, examples,
 * tokens) or about accuracy: report.html shows them as two tables, each narrow enough for a 1300-pixel window.
 */
const COST_COLUMN = /threshold|^tokens$/;

function reportHtml(input: ReportInput, figures: string[]): string {
  const columns = unique(input.rows.flatMap((r) => Object.keys(r.columns)));
  const armsTable = (cols: string[]) => {
    const { header, body } = tableCells(input.rows.map((r) => ({ ...r, columns: Object.fromEntries(cols.map((c) => [c, r.columns[c] ?? null])) })));
    // mean over ± std in one cell, the std smaller: a column is as wide as its mean
    const cell = (c: string) => escapeHtml(c).replace(/ ± (.*)$/, '<br><small>± $1</small>');
    return `<div class="wide"><table>
<thead><tr>${header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>
<tbody>
${body.map((r) => `<tr>${r.map((c) => `<td>${cell(c)}</td>`).join('')}</tr>`).join('\n')}
</tbody>
</table></div>`;
  };
  const cost = columns.filter((c) => COST_COLUMN.test(c));
  const accuracy = columns.filter((c) => !COST_COLUMN.test(c));
  const pairs = input.pairs?.length
    ? `<h2>Paired differences</h2>
<p>Accuracy of the first arm minus the second, in percentage points, with 95% intervals: over seeds (t) and over test examples (paired bootstrap).</p>
<div class="wide"><table class="pairs">
<thead><tr><th>dataset</th><th>difference</th><th>split</th><th>seeds</th><th>mean [95% over seeds]</th><th>mean [95% over examples]</th><th>verdict</th></tr></thead>
<tbody>
${input.pairs.map((p) => `<tr class="${p.tone}"><td>${escapeHtml(p.dataset)}</td><td>${escapeHtml(p.pair)}</td><td>${escapeHtml(p.split)}</td><td>${p.seeds}</td><td>${escapeHtml(p.difference)}</td><td>${escapeHtml(p.bootstrap)}</td><td class="verdict">${escapeHtml(p.verdict)}</td></tr>`).join('\n')}
</tbody>
</table></div>
`
    : '';
  const notes = input.notes?.length ? `<h2>Notes</h2>\n<ul>\n${input.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('\n')}\n</ul>\n` : '';
  // Styles inline in the page: the report must open offline, with nothing fetched.
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(input.title)}</title>
<style>
body { font-family: "${FONT}", sans-serif; margin: 2em; color: #222; }
.wide { max-width: 100%; overflow-x: auto; margin-bottom: 2em; }
table { border-collapse: collapse; font-size: 85%; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; white-space: nowrap; }
th { white-space: normal; vertical-align: bottom; }
td small { color: #666; }
th:nth-child(-n+2), td:nth-child(-n+2) { text-align: left; }
table.pairs td.verdict { white-space: normal; text-align: left; min-width: 22em; }
tr.better td.verdict { color: #1a7f37; }
tr.worse td.verdict { color: #b42318; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 560px), 1fr)); gap: 1em; }
figure { margin: 0; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { color: #555; font-size: 90%; }
</style>
</head>
<body>
<h1>${escapeHtml(input.title)}</h1>
${pairs}<h2>Arms</h2>
${armsTable(accuracy)}
${cost.length ? `<h2>Cost of reaching the threshold</h2>\n${armsTable(cost)}\n` : ''}<div class="plots">
${figures.join('\n')}
</div>
${notes}</body>
</html>
`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Dataset names become file names: keep them readable but free of path separators and odd characters. */
function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '_');
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

/** sft, rl, gta first (the modes being compared), then any other arms in order of appearance. */
function orderArms(arms: string[]): string[] {
  const known = Object.keys(MODE_COLOURS).filter((m) => arms.includes(m));
  return [...known, ...arms.filter((m) => !known.includes(m))];
}
