import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { renderReport, markdownTable, type CompareRow, type CurvePoint, type ReportInput } from '../src/report/render.js';
import { pairRows } from '../src/report/stats_markdown.js';
import type { PairStats } from '../src/report/statistics.js';

/** Debian's chromium; CI installs it (.ci/run), so a missing browser is a failure, not a skip. */
const CHROMIUM = '/usr/bin/chromium';
const MODES = ['sft', 'rl', 'gta'];
// The second name checks escaping in HTML and the file-name clean-up.
const DATASETS = ['sst2', 'ag<news>&co'];

function syntheticInput(): ReportInput {
  const curves: CurvePoint[] = [];
  for (const dataset of DATASETS) {
    for (const [k, mode] of MODES.entries()) {
      for (let i = 0; i < 5; i++) {
        const metrics: CurvePoint['metrics'] = { 'eval/accuracy': { mean: 0.4 + 0.1 * i + 0.03 * k, std: 0.01 + 0.01 * i, n: 3 } };
        if (mode !== 'sft') metrics['reward/total/mean'] = { mean: 0.2 * i - k * 0.1, std: 0.05, n: 3 };
        curves.push({ dataset, arm: mode, step: 50 * i, metrics });
      }
    }
  }
  const rows: CompareRow[] = DATASETS.flatMap((dataset) =>
    MODES.map((mode) => ({
      dataset, arm: mode, seeds: 3,
      columns: { 'final accuracy': { mean: 0.8, std: 0.01, n: 3 }, 'steps to threshold': null, tokens: 1000 },
    })),
  );
  return { title: 'Comparison <sst2 & ag_news>', rows, curves, notes: ['thresholds are 0.8 <accuracy>', 'seeds: 0, 1, 2'] };
}

/** PNG width and height from the IHDR chunk (big-endian at bytes 16-23). */
function pngSize(buf: Buffer): { width: number; height: number } {
  assert.deepEqual([...buf.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  assert.equal(buf.toString('latin1', 12, 16), 'IHDR');
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

test('markdownTable: mean ± std with 4 decimals for rates, integers for counts, – for null', () => {
  const rows: CompareRow[] = [{
    dataset: 'sst2', arm: 'gta', seeds: 3,
    columns: {
      'final accuracy': { mean: 0.81234, std: 0.01236, n: 3 },
      'steps to threshold': { mean: 250.4, std: 30.6, n: 3 },
      AUC: null,
      tokens: 123456,
    },
  }];
  assert.equal(markdownTable(rows), [
    '| dataset | arm | seeds | final accuracy | steps to threshold | AUC | tokens |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    '| sst2 | gta | 3 | 0.8123 ± 0.0124 | 250 ± 31 | – | 123456 |',
    '',
  ].join('\n'));
});

test('renderReport writes SVG and PNG plots and a self-contained report.html that opens cleanly', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gta-render-'));
  try {
    const input = syntheticInput();
    const files = await renderReport(dir, input);

    // 2 datasets x (accuracy + reward): every mode but sft has a reward curve.
    const bases = ['sst2-accuracy', 'sst2-reward', 'ag_news_co-accuracy', 'ag_news_co-reward'];
    assert.deepEqual(files.svg, bases.map((b) => path.join(dir, `${b}.svg`)));
    assert.deepEqual(files.png, bases.map((b) => path.join(dir, `${b}.png`)));
    for (const f of files.svg) {
      const svg = fs.readFileSync(f, 'utf8');
      assert.match(svg, /^<svg [^>]*width="640" height="360"/, f);
      assert.ok(svg.trimEnd().endsWith('</svg>'), f);
      const expected = f.includes('reward') ? ['rl', 'gta'] : MODES;
      for (const mode of expected) assert.ok(svg.includes(`>${mode}</text>`), `${f}: legend lists ${mode}`);
      if (f.includes('reward')) assert.ok(!svg.includes('>sft</text>'), `${f}: sft has no reward curve`);
      assert.ok(svg.includes(f.includes('reward') ? ': mean total reward</text>' : ': eval accuracy</text>'), `${f}: title`);
    }
    for (const f of files.png) assert.deepEqual(pngSize(fs.readFileSync(f)), { width: 640, height: 360 }, f);

    // Another size reaches both the SVG and the PNG exactly.
    const small = await renderReport(path.join(dir, 'small'), { ...input, curves: input.curves.slice(0, 5) }, { width: 400, height: 300 });
    assert.deepEqual(pngSize(fs.readFileSync(small.png[0])), { width: 400, height: 300 });

    const html = fs.readFileSync(files.html, 'utf8');
    assert.match(html, /^<!DOCTYPE html>/);
    assert.ok(html.includes('<meta charset="utf-8">'));
    assert.ok(html.includes('<h1>Comparison &lt;sst2 &amp; ag_news&gt;</h1>'));
    assert.ok(html.includes('<li>thresholds are 0.8 &lt;accuracy&gt;</li>'));
    // accuracy columns in one table (mean over a smaller ± std), the threshold's cost in another
    assert.ok(html.includes('<td>ag&lt;news&gt;&amp;co</td><td>gta</td><td>3</td><td>0.8000<br><small>± 0.0100</small></td></tr>'));
    assert.ok(html.includes('<td>ag&lt;news&gt;&amp;co</td><td>gta</td><td>3</td><td>–</td><td>1000</td></tr>'));
    assert.equal(html.match(/<figure>\s*<svg /g)?.length, 4);
    assert.equal(html.match(/<figcaption>/g)?.length, 4);
    // Self-contained: nothing to fetch (headless Chromium does not report failed loads as console messages).
    assert.doesNotMatch(html, /<script|<link|<img|<iframe|\ssrc=|url\((?!#)/i);

    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (as .ci/run does)`);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`); });
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      page.on('requestfailed', (r) => problems.push(`requestfailed: ${r.url()}`));
      // Any request other than the page itself would break "self-contained".
      page.on('request', (r) => { if (r.url() !== pathToFileURL(files.html).href) problems.push(`request: ${r.url()}`); });
      await page.goto(pathToFileURL(files.html).href, { waitUntil: 'load' });
      assert.deepEqual(problems, []);
      assert.equal(await page.title(), input.title);
      assert.equal(await page.locator('figure svg').count(), 4);
      assert.equal(await page.locator('tbody tr').count(), 12);
    } finally {
      await browser.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** Every column aggregate.ts writes, with GTA's copy-guess ones and a test split: the widest table a sweep makes. */
function fullRows(): CompareRow[] {
  const st = (mean: number, std = 0.0123): { mean: number; std: number; n: number } => ({ mean, std, n: 3 });
  return ['sst5', 'massive_scenario'].flatMap((dataset) =>
    ['sft', 'rl', 'gta', 'gta-no-constraint'].map((arm) => ({
      dataset, arm, seeds: 3,
      columns: {
        'final accuracy': st(0.4123), 'final f1_weighted': st(0.3987), 'best accuracy': st(0.4234), 'best f1_weighted': st(0.4101),
        'steps to threshold': st(1250, 431.2), 'seconds to threshold': st(812.3, 120.4), 'examples to threshold': st(40000, 13798), 'seeds reaching threshold': 3,
        'accuracy AUC': st(0.3712), tokens: 123456789, 'test accuracy': st(0.4011), 'test f1_weighted': st(0.3899),
        'final copy-guess accuracy': st(0.3988), 'test copy-guess accuracy': st(0.3901),
      },
    })),
  );
}

test('report.html puts the paired differences first with a verdict in words, and fits a 1300-pixel window', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gta-render-'));
  try {
    const stats: PairStats[] = [
      { dataset: 'sst5', a: 'gta', b: 'sft', split: 'test', n_seeds: 3, seeds: [1, 2, 3], diffs: [-0.03, -0.035, -0.037], mean_diff: -0.034, sd: 0.0036, t_quantile: 4.3027, t_interval: [-0.054, -0.014], n_examples: 2210, bootstrap_mean: -0.034, bootstrap_interval: [-0.05, -0.018], significant: true },
      { dataset: 'sst5', a: 'gta', b: 'rl', split: 'test', n_seeds: 3, seeds: [1, 2, 3], diffs: [0.01, -0.004, 0.006], mean_diff: 0.004, sd: 0.0072, t_quantile: 4.3027, t_interval: [-0.014, 0.022], n_examples: 2210, bootstrap_mean: 0.004, bootstrap_interval: [-0.01, 0.018], significant: false },
    ];
    const pairs = pairRows(stats);
    assert.equal(pairs[0].difference, '−3.4 [−5.4, −1.4]');
    assert.equal(pairs[0].verdict, 'gta is worse than sft on sst5, by 3.4 points of test accuracy: both intervals exclude 0.');
    assert.equal(pairs[1].verdict, 'No clear difference between gta and rl on sst5 (gta ahead by 0.4 points of test accuracy): the intervals include 0.');
    const input: ReportInput = { ...syntheticInput(), rows: fullRows(), pairs };
    const files = await renderReport(dir, input);
    const html = fs.readFileSync(files.html, 'utf8');
    assert.ok(html.indexOf('<h2>Paired differences</h2>') < html.indexOf('<h2>Arms</h2>'), 'the differences come first');
    assert.ok(html.includes('<td>−3.4 [−5.4, −1.4]</td>'));
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
      await page.goto(pathToFileURL(files.html).href, { waitUntil: 'load' });
      // nothing wider than the window: the page does not scroll sideways, and no table needs its own scroll
      const widths = await page.evaluate(() => ({
        page: document.documentElement.scrollWidth,
        tables: [...document.querySelectorAll('.wide')].map((w) => [w.scrollWidth, w.clientWidth]),
        plots: [...document.querySelectorAll('figure svg')].map((s) => s.getBoundingClientRect().width),
        columns: new Set([...document.querySelectorAll('figure svg')].map((s) => Math.round(s.getBoundingClientRect().left))).size,
      }));
      assert.ok(widths.page <= 1300, `page ${widths.page} px wide`);
      assert.equal(widths.tables.length, 3);
      for (const [scroll, client] of widths.tables) assert.ok(scroll <= client, `a table of ${scroll} px in ${client}`);
      // plots (SVGs with a viewBox) share the window's width, two a row here, scaled to their column
      assert.equal(widths.columns, 2);
      assert.ok(widths.plots.length > 0 && widths.plots.every((w) => w > 560 && w < 640), widths.plots.join(', '));
      const wide = await browser.newPage({ viewport: { width: 1900, height: 900 } });
      await wide.goto(pathToFileURL(files.html).href, { waitUntil: 'load' });
      const columns = await wide.evaluate(() => new Set([...document.querySelectorAll('figure svg')].map((s) => Math.round(s.getBoundingClientRect().left))).size);
      assert.equal(columns, 3, 'a wider window holds more plots a row');
    } finally {
      await browser.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
