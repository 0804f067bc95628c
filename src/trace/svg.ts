// A fault trace as a heatmap (standalone SVG): time across, pages down, one band per
// region. A cell's hue is the source that served most of its faults, its strength the
// number of faults (log scale), so hot spots and remote traffic stand out at a glance.
import { NaplusError } from '../errors.js';
import type { FaultEvent, FaultSource } from './fault-event.js';
import { SOURCES } from './events.js';

/** Okabe-Ito hues: distinct for people with the common colour-vision deficiencies too. */
const SOURCE_COLOURS: Record<FaultSource, string> = { cache: '#009E73', segment: '#0072B2', remote: '#D55E00' };

const MAX_COLUMNS = 200;
const MAX_ROWS = 120;
/** More regions than this would leave each too few rows to read: the busiest are drawn. */
const MAX_BANDS = 4;
const PLOT_W = 800;
const PLOT_H = 480;
const MAX_CELL_H = 16;
const LEFT = 80;
const RIGHT = 230;
const TOP = 70;
const BAND_GAP = 28;
const BOTTOM = 60;

/** The smallest 1, 2 or 5 times a power of ten that is at least `x` (> 0). */
function niceStep(x: number): number {
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 5, 10]) if (m * p >= x * (1 - 1e-12)) return m * p;
  return 10 * p;
}

function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' }[c]};`);
}

const n2 = (v: number) => String(Math.round(v * 100) / 100);

function el(name: string, attrs: Record<string, string | number>, body?: string): string {
  const a = Object.entries(attrs).map(([k, v]) => ` ${k}="${escapeXml(typeof v === 'number' ? n2(v) : v)}"`).join('');
  return body === undefined ? `<${name}${a}/>` : `<${name}${a}>${body}</${name}>`;
}

const text = (attrs: Record<string, string | number>, s: string) => el('text', attrs, escapeXml(s));

/** The source that served most faults; ties go to the costlier one, so that expensive traffic is never hidden. */
function dominantSource(counts: Record<FaultSource, number>): FaultSource {
  let best: FaultSource = 'cache';
  for (const s of SOURCES) if (counts[s] >= counts[best]) best = s;
  return best;
}

interface Band {
  region: string;
  faults: number;
  minPage: number;
  maxPage: number;
  pagesPerRow: number;
  firstRow: number;
  rows: number;
  cells: Map<number, Record<FaultSource, number>>;
}

function secondsLabel(ms: number, stepMs: number): string {
  return `${(ms / 1000).toFixed(Math.max(0, Math.ceil(-Math.log10(stepMs / 1000))))} s`;
}

/**
 * The heatmap of a non-empty trace. The root carries `data-start-ms` and `data-bin-ms`:
 * an event falls in column floor((t − start) / bin); each cell carries its column, its
 * page range and its faults per source, so that the picture can be checked by machine.
 */
export function renderHeatmap(events: FaultEvent[]): string {
  if (events.length === 0) throw new NaplusError('EINVAL', 'A heatmap needs at least one fault event');
  let start = Infinity;
  let end = -Infinity;
  const regions = new Map<string, { faults: number; minPage: number; maxPage: number }>();
  const bySource: Record<FaultSource, number> = { cache: 0, segment: 0, remote: 0 };
  for (const e of events) {
    start = Math.min(start, e.t);
    end = Math.max(end, e.t);
    bySource[e.source]++;
    const r = regions.get(e.region);
    if (r) {
      r.faults++;
      r.minPage = Math.min(r.minPage, e.page);
      r.maxPage = Math.max(r.maxPage, e.page);
    } else regions.set(e.region, { faults: 1, minPage: e.page, maxPage: e.page });
  }
  // Node timestamps are whole milliseconds: narrower columns would only show gaps.
  const binMs = Math.max(1, niceStep(Math.max(end - start, 1) / (MAX_COLUMNS - 1)));
  const cols = Math.floor((end - start) / binMs) + 1;
  const ranked = [...regions].sort((a, b) => b[1].faults - a[1].faults || (a[0] < b[0] ? -1 : 1));
  const shown = ranked.slice(0, MAX_BANDS);
  const rowBudget = Math.floor(MAX_ROWS / shown.length);
  const bands: Band[] = shown.map(([region, r]) => {
    const pagesPerRow = niceStep(Math.max(1, (r.maxPage - r.minPage + 1) / (rowBudget - 1)));
    const firstRow = Math.floor(r.minPage / pagesPerRow);
    return { region, ...r, pagesPerRow, firstRow, rows: Math.floor(r.maxPage / pagesPerRow) - firstRow + 1, cells: new Map() };
  });
  const bandOf = new Map(bands.map((b) => [b.region, b]));
  let maxCount = 0;
  for (const e of events) {
    const b = bandOf.get(e.region);
    if (!b) continue;
    const key = (Math.floor(e.page / b.pagesPerRow) - b.firstRow) * cols + Math.floor((e.t - start) / binMs);
    let c = b.cells.get(key);
    if (!c) b.cells.set(key, (c = { cache: 0, segment: 0, remote: 0 }));
    c[e.source]++;
  }
  for (const b of bands) for (const c of b.cells.values()) maxCount = Math.max(maxCount, c.cache + c.segment + c.remote);
  // Even one fault must be seen at a glance: strength starts well above nothing.
  const strength = (count: number) => (maxCount <= 1 ? 1 : 0.3 + (0.7 * Math.log(count)) / Math.log(maxCount));

  const cellW = PLOT_W / cols;
  const cellH = Math.min(MAX_CELL_H, PLOT_H / bands.reduce((a, b) => a + b.rows, 0));
  const spanMs = cols * binMs;
  const tickMs = niceStep(spanMs / 8);
  const parts: string[] = [];
  let y = TOP;
  for (const b of bands) {
    y += BAND_GAP;
    const h = b.rows * cellH;
    const per = b.pagesPerRow === 1 ? 'one page per row' : `${b.pagesPerRow} pages per row`;
    parts.push(text({ x: LEFT, y: y - 8, 'font-weight': 'bold' }, `region ${b.region}: pages ${b.minPage}–${b.maxPage}, ${b.faults} faults (${per})`));
    const cells = [...b.cells].map(([key, c]) => {
      const row = Math.floor(key / cols);
      const col = key % cols;
      const count = c.cache + c.segment + c.remote;
      const source = dominantSource(c);
      const from = (b.firstRow + row) * b.pagesPerRow;
      const to = from + b.pagesPerRow - 1;
      const pages = from === to ? `page ${from}` : `pages ${from}–${to}`;
      const tip = `${pages}, ${secondsLabel(col * binMs, binMs)}–${secondsLabel((col + 1) * binMs, binMs)}: ${count} faults (cache ${c.cache}, segment ${c.segment}, remote ${c.remote})`;
      return el('rect', {
        x: LEFT + col * cellW, y: y + row * cellH, width: cellW, height: cellH,
        fill: SOURCE_COLOURS[source], 'fill-opacity': strength(count),
        'data-col': col, 'data-page-from': from, 'data-page-to': to, 'data-count': count, 'data-source': source,
        'data-cache': c.cache, 'data-segment': c.segment, 'data-remote': c.remote,
      }, el('title', {}, escapeXml(tip)));
    });
    parts.push(el('g', { 'data-region': b.region }, [
      el('rect', { x: LEFT, y, width: PLOT_W, height: h, fill: '#f7f7f7', stroke: '#999' }),
      ...cells,
    ].join('')));
    const tickRows = Math.max(1, niceStep(b.rows / Math.max(1, Math.floor(h / 30))));
    for (let r = 0; r < b.rows; r += tickRows) {
      const ty = y + (r + 0.5) * cellH;
      parts.push(el('line', { x1: LEFT - 4, y1: ty, x2: LEFT, y2: ty, stroke: '#333' }));
      parts.push(text({ x: LEFT - 6, y: ty + 4, 'text-anchor': 'end' }, String((b.firstRow + r) * b.pagesPerRow)));
    }
    y += h;
  }
  for (let k = 0; k * tickMs <= spanMs; k++) {
    const ms = k * tickMs;
    const tx = LEFT + (ms / spanMs) * PLOT_W;
    parts.push(el('line', { x1: tx, y1: y, x2: tx, y2: y + 5, stroke: '#333' }));
    parts.push(text({ x: tx, y: y + 18, 'text-anchor': 'middle' }, secondsLabel(ms, tickMs)));
  }
  parts.push(text({ x: LEFT + PLOT_W / 2, y: y + 40, 'text-anchor': 'middle' }, `seconds from the first fault (${new Date(start).toISOString()}), ${binMs >= 1000 ? `${binMs / 1000} s` : `${binMs} ms`} per column`));
  parts.push(text({ x: 18, y: (TOP + y) / 2, 'text-anchor': 'middle', transform: `rotate(-90 18 ${n2((TOP + y) / 2)})` }, 'page'));

  const lx = LEFT + PLOT_W + 24;
  let ly = TOP + BAND_GAP;
  parts.push(text({ x: lx, y: ly, 'font-weight': 'bold' }, 'Cell colour: source'));
  for (const s of SOURCES) {
    ly += 22;
    parts.push(el('rect', { x: lx, y: ly - 12, width: 16, height: 16, fill: SOURCE_COLOURS[s], 'data-legend': s }));
    parts.push(text({ x: lx + 24, y: ly + 1 }, `${s} (${bySource[s]} faults)`));
  }
  ly += 22;
  parts.push(text({ x: lx, y: ly, fill: '#555' }, 'that served most of its faults;'));
  parts.push(text({ x: lx, y: ly + 15, fill: '#555' }, 'ties go to the costlier one'));
  ly += 48;
  parts.push(text({ x: lx, y: ly, 'font-weight': 'bold' }, 'Strength: faults per cell'));
  const steps = [...new Set([1, 2, 3, 4].map((i) => Math.round(maxCount ** (i / 4))))];
  for (const count of [1, ...steps.filter((c) => c > 1)]) {
    ly += 22;
    parts.push(el('rect', { x: lx, y: ly - 12, width: 16, height: 16, fill: '#333', 'fill-opacity': strength(count) }));
    parts.push(text({ x: lx + 24, y: ly + 1 }, String(count)));
  }
  parts.push(text({ x: lx, y: ly + 22, fill: '#555' }, '(log scale)'));

  const spanS = (end - start) / 1000;
  const nodes = new Set(events.map((e) => e.node)).size;
  const title = `Naplus fault trace: ${events.length} faults from ${nodes} node${nodes === 1 ? '' : 's'} over ${spanS.toFixed(spanS < 10 ? 3 : 1)} s`;
  const omitted = ranked.slice(MAX_BANDS);
  const subtitle = SOURCES.map((s) => `${s} ${bySource[s]}`).join(', ')
    + (omitted.length > 0 ? `; busiest ${MAX_BANDS} of ${ranked.length} regions drawn, not drawn: ${omitted.map(([r, v]) => `${r} (${v.faults})`).join(', ')}` : '');
  const width = LEFT + PLOT_W + RIGHT;
  const height = Math.max(y + BOTTOM, ly + 40);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>\n',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${n2(height)}" viewBox="0 0 ${width} ${n2(height)}" font-family="sans-serif" font-size="12" data-start-ms="${start}" data-bin-ms="${binMs}">\n`,
    el('title', {}, escapeXml(title)),
    el('rect', { x: 0, y: 0, width, height, fill: 'white' }),
    text({ x: LEFT, y: 28, 'font-size': 18, 'font-weight': 'bold' }, title),
    text({ x: LEFT, y: 50, fill: '#444' }, subtitle),
    ...parts,
    '\n</svg>\n',
  ].join('');
}
