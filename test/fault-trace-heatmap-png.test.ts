// The heatmap as people see it: rendered to pixels (resvg), a page that moves between
// two nodes shows in both nodes' colours, a single fault is plainly visible, and a trace
// of thousands of faults still makes a picture of bounded size with cells one can see.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { XMLParser } from 'fast-xml-parser';
import { Resvg } from '@resvg/resvg-js';
import { renderHeatmap } from '../src/trace/svg.js';
import type { FaultEvent, FaultSource } from '../src/trace/fault-event.js';
import { checkHeatmap } from './helpers/fault-trace.js';

const T0 = 1_700_000_000_000;
const SOURCES: FaultSource[] = ['cache', 'segment', 'remote'];

function ev(t: number, page: number, node: number, source: FaultSource = 'remote'): FaultEvent {
  return { t: T0 + t, node, region: 'data', app: 100 + node, page, kind: 'write', source, waitUs: 50, wireBytes: 0 };
}

/** Page 7 moves between nodes 1 and 2 every 20 ms for 2 s; 3 nodes fault 1,500 other pages; node 3 faults page 900 once. */
function trace(): FaultEvent[] {
  const events: FaultEvent[] = [];
  for (let k = 0; k < 100; k++) events.push(ev(k * 20, 7, 1 + (k % 2)));
  for (let i = 0; i < 1500; i++) events.push(ev((i * 7919) % 2000, 20 + ((i * 104_729) % 800), 1 + (i % 3), SOURCES[i % 3]));
  events.push(ev(1000, 900, 3, 'segment'));
  return events.sort((a, b) => a.t - b.t);
}

const parse = (svg: string) => new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (n) => ['g', 'rect', 'text'].includes(n) }).parse(svg).svg;
const rgb = (hex: string) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
/** What a cell of colour `fill` at `opacity` looks like over the band's background (#f7f7f7). */
const blended = (fill: string, opacity: number) => rgb(fill).map((c) => Math.round(c * opacity + 0xf7 * (1 - opacity)));

function render(svg: string) {
  const image = new Resvg(svg, { font: { loadSystemFonts: false } }).render();
  const pixel = (x: number, y: number) => {
    const i = (Math.floor(y) * image.width + Math.floor(x)) * 4;
    return [image.pixels[i]!, image.pixels[i + 1]!, image.pixels[i + 2]!];
  };
  return { image, pixel };
}

const centre = (r: any) => [Number(r.x) + Number(r.width) / 2, Number(r.y) + Number(r.height) / 2] as const;
const close = (a: number[], b: number[], what: string) => assert.ok(a.every((v, i) => Math.abs(v - b[i]!) <= 3), `${what}: pixel ${a} is not ${b}`);

test('a page moving between two nodes shows in each node\'s band, in that node\'s colour', () => {
  const events = trace();
  const svg = renderHeatmap(events);
  checkHeatmap(svg, events);
  const root = parse(svg);
  const { pixel } = render(svg);
  const nodeColour = new Map<number, string>(root.rect.filter((r: any) => r['data-legend-node']).map((r: any) => [Number(r['data-legend-node']), r.fill]));
  assert.is(new Set(nodeColour.values()).size, 3);
  for (const node of [1, 2]) {
    const band = root.g.find((g: any) => Number(g['data-node']) === node);
    const cells = band.rect.filter((r: any) => r['data-col'] !== undefined && Number(r['data-page-from']) <= 7 && 7 <= Number(r['data-page-to']));
    assert.ok(cells.length >= 40, `node ${node}: page 7 has a cell in most columns (${cells.length})`);
    for (const cell of cells) {
      const [x, y] = centre(cell);
      close(pixel(x, y), blended(nodeColour.get(node)!, Number(cell['fill-opacity'])), `node ${node}, page 7, column ${cell['data-col']}`);
    }
  }
  // The same page, at the same height, in both bands: the rows line up.
  const row = (node: number) => root.g.find((g: any) => Number(g['data-node']) === node).rect.find((r: any) => Number(r['data-page-from']) <= 7 && 7 <= Number(r['data-page-to']) && r['data-col'] !== undefined);
  const band = (node: number) => root.g.find((g: any) => Number(g['data-node']) === node).rect[0];
  assert.is(Number(row(1).y) - Number(band(1).y), Number(row(2).y) - Number(band(2).y));
});

test('a cell with a single fault stands out from the background', () => {
  const svg = renderHeatmap(trace());
  const root = parse(svg);
  const { pixel } = render(svg);
  const band = root.g.find((g: any) => Number(g['data-node']) === 3);
  const single = band.rect.find((r: any) => r['data-col'] !== undefined && Number(r['data-page-from']) <= 900 && 900 <= Number(r['data-page-to']));
  assert.is(single['data-count'], '1');
  const [x, y] = centre(single);
  const p = pixel(x, y);
  const contrast = Math.max(...p.map((v, i) => Math.abs(v - rgb('#f7f7f7')[i]!)));
  assert.ok(contrast >= 100, `a one-fault cell differs from the background by ${contrast} of 255 in some channel`);
  assert.ok(Number(single.width) >= 3 && Number(single.height) >= 3, `cells are at least 3 px (${single.width} x ${single.height})`);
  if (process.env.NAPLUS_HEATMAP_PNG) fs.writeFileSync(process.env.NAPLUS_HEATMAP_PNG, render(svg).image.asPng());
});

test('ten thousand faults on six nodes: a picture of bounded size', () => {
  const events = Array.from({ length: 10_000 }, (_, i) => ev(i * 3, (i * 2_654_435_761) % 50_000, 1 + (i % 6), SOURCES[i % 3]));
  const svg = renderHeatmap(events);
  checkHeatmap(svg, events);
  const { image } = render(svg);
  assert.ok(image.width <= 1200 && image.height <= 1400, `${image.width} x ${image.height}`);
});

test.run();
