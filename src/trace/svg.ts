// A fault trace as a heatmap (standalone SVG): time across, pages down, in two panels.
// "Where pages came from": one band per region, a cell's hue the source that served most
// of its faults. "Which node faulted": one band per node (per region), in the node's
// hue, on the same page rows, so that a page moving between nodes (a ping-pong page of
// the text report) shows in each node's band in turn. A cell's strength is its number
// of faults (log scale, and a single fault still plainly visible).
import { NaplusError } from '../errors.js';
import type { FaultEvent, FaultSource } from './fault-event.js';
import { SOURCES } from './events.js';

/** Okabe-Ito hues: distinct for people with the common colour-vision deficiencies too. */
const SOURCE_COLOURS: Record<FaultSource, string> = { cache: '#009E73', segment: '#0072B2', remote: '#D55E00' };
/**
 * Node hues (Okabe-Ito and Tol): none of the three source hues above, so that the two
 * panels cannot be confused; all dark enough that a cell of one fault (MIN_STRENGTH)
 * stands out from the band.
 */
const NODE_COLOURS = ['#E69F00', '#332288', '#AA4499', '#000000', '#882255', '#999933', '#44AA99', '#661100'];

const MAX_COLUMNS = 200;
const MAX_ROWS = 120;
/** More regions than this would leave each too few rows to read: the busiest are drawn. */
const MAX_BANDS = 4;
/** Node bands (region x node) in the second panel: the busiest are drawn. */
const MAX_NODE_BANDS = 8;
/** Opacity of a cell with one fault; the busiest cell is opaque. */
const MIN_STRENGTH = 0.6;
const PANEL_GAP = 70;
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
  /** Set for a band of one node's faults (second panel). */
  node?: number;
  label: string;
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

interface Extent {
  faults: number;
  minPage: number;
  maxPage: number;
}

function grow(map: Map<string, Extent>, key: string, page: number): void {
  const r = map.get(key);
  if (r) {
    r.faults++;
    r.minPage = Math.min(r.minPage, page);
    r.maxPage = Math.max(r.maxPage, page);
  } else map.set(key, { faults: 1, minPage: page, maxPage: page });
}

/** Rows of `pagesPerRow` pages over a region's page range, within `rowBudget` rows. */
function pageRows(r: Extent, rowBudget: number): Pick<Band, 'pagesPerRow' | 'firstRow' | 'rows'> {
  const pagesPerRow = niceStep(Math.max(1, (r.maxPage - r.minPage + 1) / Math.max(1, rowBudget - 1)));
  const firstRow = Math.floor(r.minPage / pagesPerRow);
  return { pagesPerRow, firstRow, rows: Math.floor(r.maxPage / pagesPerRow) - firstRow + 1 };
}

/**
 * The heatmap of a non-empty trace. The root carries `data-start-ms` and `data-bin-ms`:
 * an event falls in column floor((t − start) / bin); each cell carries its column, its
 * page range and its faults per source, so that the picture can be checked by machine.
 * Bands of the second panel carry `data-node` as well.
 */
export function renderHeatmap(events: FaultEvent[]): string {
  if (events.length === 0) throw new NaplusError('EINVAL', 'A heatmap needs at least one fault event');
  let start = Infinity;
  let end = -Infinity;
  const regions = new Map<string, Extent>();
  const regionNodes = new Map<string, Extent>();
  const bySource: Record<FaultSource, number> = { cache: 0, segment: 0, remote: 0 };
  const nodeFaults = new Map<number, number>();
  for (const e of events) {
    start = Math.min(start, e.t);
    end = Math.max(end, e.t);
    bySource[e.source]++;
    nodeFaults.set(e.node, (nodeFaults.get(e.node) ?? 0) + 1);
    grow(regions, e.region, e.page);
    grow(regionNodes, JSON.stringify([e.region, e.node]), e.page);
  }
  // Node timestamps are whole milliseconds: narrower columns would only show gaps.
  const binMs = Math.max(1, niceStep(Math.max(end - start, 1) / (MAX_COLUMNS - 1)));
  const cols = Math.floor((end - start) / binMs) + 1;
  const byFaults = <K>(a: [K, Extent], b: [K, Extent]) => b[1].faults - a[1].faults || (String(a[0]) < String(b[0]) ? -1 : 1);
  const ranked = [...regions].sort(byFaults);
  const shown = ranked.slice(0, MAX_BANDS);
  const sourceBands: Band[] = shown.map(([region, r]) => ({
    region, label: `region ${region}`, ...r, ...pageRows(r, Math.floor(MAX_ROWS / shown.length)), cells: new Map(),
  }));
  // Node bands of the regions drawn above, busiest first, then in region and node order;
  // a region's node bands share its page rows, so that a page sits at the same height in each.
  const pairs = [...regionNodes]
    .map(([key, r]) => [JSON.parse(key) as [string, number], r] as const)
    .filter(([[region]]) => shown.some(([name]) => name === region))
    .sort((a, b) => b[1].faults - a[1].faults)
    .slice(0, MAX_NODE_BANDS)
    .sort((a, b) => shown.findIndex(([n]) => n === a[0][0]) - shown.findIndex(([n]) => n === b[0][0]) || a[0][1] - b[0][1]);
  const nodeRowBudget = Math.floor(MAX_ROWS / Math.max(1, pairs.length));
  const nodeBands: Band[] = pairs.map(([[region, node], r]) => ({
    region, node, label: `node ${node}, region ${region}`, ...r, ...pageRows(regions.get(region)!, nodeRowBudget),
    minPage: regions.get(region)!.minPage, maxPage: regions.get(region)!.maxPage, cells: new Map(),
  }));
  const nodeColour = new Map([...nodeFaults.keys()].sort((a, b) => a - b).map((n, i) => [n, NODE_COLOURS[i % NODE_COLOURS.length]!]));
  const bandOf = new Map<string, Band>([...sourceBands.map((b) => [b.region, b] as const), ...nodeBands.map((b) => [JSON.stringify([b.region, b.node]), b] as const)]);
  let maxCount = 0;
  for (const e of events) {
    for (const b of [bandOf.get(e.region), bandOf.get(JSON.stringify([e.region, e.node]))]) {
      if (!b) continue;
      const key = (Math.floor(e.page / b.pagesPerRow) - b.firstRow) * cols + Math.floor((e.t - start) / binMs);
      let c = b.cells.get(key);
      if (!c) b.cells.set(key, (c = { cache: 0, segment: 0, remote: 0 }));
      c[e.source]++;
      maxCount = Math.max(maxCount, c.cache + c.segment + c.remote);
    }
  }
  // Even one fault must be seen at a glance: strength starts well above nothing.
  const strength = (count: number) => (maxCount <= 1 ? 1 : MIN_STRENGTH + ((1 - MIN_STRENGTH) * Math.log(count)) / Math.log(maxCount));

  const cellW = PLOT_W / cols;
  const spanMs = cols * binMs;
  const tickMs = niceStep(spanMs / 8);
  const parts: string[] = [];
  let y = TOP;

  /** One panel: its title, its bands of cells (coloured by `colour`), page ticks, and the time axis. */
  const panel = (title: string, bands: Band[], colour: (b: Band, c: Record<FaultSource, number>) => { fill: string; source: FaultSource }) => {
    const cellH = Math.min(MAX_CELL_H, PLOT_H / bands.reduce((a, b) => a + b.rows, 0));
    parts.push(text({ x: LEFT, y: y + 14, 'font-size': 15, 'font-weight': 'bold' }, title));
    y += 14;
    for (const b of bands) {
      y += BAND_GAP;
      const h = b.rows * cellH;
      const per = b.pagesPerRow === 1 ? 'one page per row' : `${b.pagesPerRow} pages per row`;
      parts.push(text({ x: LEFT, y: y - 8, 'font-weight': 'bold' }, `${b.label}: pages ${b.minPage}–${b.maxPage}, ${b.faults} faults (${per})`));
      const cells = [...b.cells].map(([key, c]) => {
        const row = Math.floor(key / cols);
        const col = key % cols;
        const count = c.cache + c.segment + c.remote;
        const { fill, source } = colour(b, c);
        const from = (b.firstRow + row) * b.pagesPerRow;
        const to = from + b.pagesPerRow - 1;
        const pages = from === to ? `page ${from}` : `pages ${from}–${to}`;
        const who = b.node === undefined ? '' : `node ${b.node}, `;
        const tip = `${who}${pages}, ${secondsLabel(col * binMs, binMs)}–${secondsLabel((col + 1) * binMs, binMs)}: ${count} faults (cache ${c.cache}, segment ${c.segment}, remote ${c.remote})`;
        return el('rect', {
          x: LEFT + col * cellW, y: y + row * cellH, width: cellW, height: cellH,
          fill, 'fill-opacity': strength(count),
          'data-col': col, 'data-page-from': from, 'data-page-to': to, 'data-count': count, 'data-source': source,
          'data-cache': c.cache, 'data-segment': c.segment, 'data-remote': c.remote,
        }, el('title', {}, escapeXml(tip)));
      });
      const attrs: Record<string, string | number> = { 'data-region': b.region };
      if (b.node !== undefined) attrs['data-node'] = b.node;
      parts.push(el('g', attrs, [
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
  };

  const panelTop = y;
  panel('Where pages came from (cell colour: the source that served most of its faults)', sourceBands, (_b, c) => {
    const source = dominantSource(c);
    return { fill: SOURCE_COLOURS[source], source };
  });
  const legendSources = panelTop;
  y += PANEL_GAP;
  const nodePanelTop = y;
  panel('Which node faulted (one band per node, in its colour; a page that moves between nodes shows in each)', nodeBands, (b, c) => ({
    fill: nodeColour.get(b.node!)!, source: dominantSource(c),
  }));
  parts.push(text({ x: 18, y: (TOP + y) / 2, 'text-anchor': 'middle', transform: `rotate(-90 18 ${n2((TOP + y) / 2)})` }, 'page'));

  const lx = LEFT + PLOT_W + 24;
  let ly = legendSources + BAND_GAP + 14;
  parts.push(text({ x: lx, y: ly, 'font-weight': 'bold' }, 'Cell colour: source'));
  for (const src of SOURCES) {
    ly += 22;
    parts.push(el('rect', { x: lx, y: ly - 12, width: 16, height: 16, fill: SOURCE_COLOURS[src], 'data-legend': src }));
    parts.push(text({ x: lx + 24, y: ly + 1 }, `${src} (${bySource[src]} faults)`));
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
  let ny = Math.max(nodePanelTop + BAND_GAP + 14, ly + 60);
  parts.push(text({ x: lx, y: ny, 'font-weight': 'bold' }, 'Cell colour: node'));
  for (const [node, fill] of nodeColour) {
    ny += 22;
    parts.push(el('rect', { x: lx, y: ny - 12, width: 16, height: 16, fill, 'data-legend-node': node }));
    parts.push(text({ x: lx + 24, y: ny + 1 }, `node ${node} (${nodeFaults.get(node)} faults)`));
  }

  const spanS = (end - start) / 1000;
  const title = `Naplus fault trace: ${events.length} faults from ${nodeFaults.size} node${nodeFaults.size === 1 ? '' : 's'} over ${spanS.toFixed(spanS < 10 ? 3 : 1)} s`;
  const omitted = ranked.slice(MAX_BANDS);
  const omittedPairs = regionNodes.size - pairs.length - [...regionNodes.keys()].filter((k) => !shown.some(([r]) => r === (JSON.parse(k) as [string])[0])).length;
  const subtitle = SOURCES.map((src) => `${src} ${bySource[src]}`).join(', ')
    + (omitted.length > 0 ? `; busiest ${MAX_BANDS} of ${ranked.length} regions drawn, not drawn: ${omitted.map(([r, v]) => `${r} (${v.faults})`).join(', ')}` : '')
    + (omittedPairs > 0 ? `; the busiest ${MAX_NODE_BANDS} node bands drawn, ${omittedPairs} not` : '');
  const width = LEFT + PLOT_W + RIGHT;
  const height = Math.max(y + BOTTOM, ny + 40);
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
