// The heatmap as a pure function of events: bounded size for any trace, busiest regions
// drawn when there are many, ties to the costlier source, everything escaped.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { XMLParser } from 'fast-xml-parser';
import { renderHeatmap } from '../src/trace/svg.js';
import type { FaultEvent, FaultSource } from '../src/trace/fault-event.js';
import { checkHeatmap } from './helpers/fault-trace.js';

const T0 = 1_700_000_000_000;
const SOURCES: FaultSource[] = ['cache', 'segment', 'remote'];

function ev(t: number, page: number, source: FaultSource, region = 'data', node = 1): FaultEvent {
  return { t: T0 + t, node, region, app: 9, page, kind: 'read', source, waitUs: 10, wireBytes: 0 };
}

const parse = (svg: string) => new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (n) => ['g', 'rect', 'text'].includes(n) }).parse(svg).svg;
const cellsOf = (band: any): any[] => band.rect.filter((r: any) => r['data-col'] !== undefined);

test('an hour of faults over a million pages stays within 200 columns and 120 rows', () => {
  // A deterministic scatter: page and time from a multiplicative hash of the index.
  const events = Array.from({ length: 5000 }, (_, i) => ev(Math.floor((i * 3_600_000) / 5000), (i * 2_654_435_761) % 1_000_003, SOURCES[i % 3]!));
  const svg = renderHeatmap(events);
  checkHeatmap(svg, events);
  const cells = cellsOf(parse(svg).g[0]);
  assert.ok(Math.max(...cells.map((c) => Number(c['data-col']))) < 200);
  assert.ok(new Set(cells.map((c) => c['data-page-from'])).size <= 120);
});

test('one event, or events all in one millisecond, make a one-column map', () => {
  checkHeatmap(renderHeatmap([ev(0, 5, 'segment')]), [ev(0, 5, 'segment')]);
  const same = [ev(0, 1, 'cache'), ev(0, 2, 'remote'), ev(0, 2, 'remote')];
  const svg = renderHeatmap(same);
  checkHeatmap(svg, same);
  assert.equal(cellsOf(parse(svg).g[0]).map((c) => c['data-col']), ['0', '0']);
});

test('a tie goes to the costlier source; the strongest cell is fully opaque', () => {
  const events = [ev(0, 0, 'cache'), ev(0, 0, 'remote'), ev(0, 1, 'cache'), ev(0, 1, 'segment'), ev(0, 1, 'segment'), ev(0, 2, 'cache')];
  const svg = renderHeatmap(events);
  checkHeatmap(svg, events);
  const cells = cellsOf(parse(svg).g[0]);
  assert.equal(cells.map((c) => [c['data-page-from'], c['data-source'], c['data-count']]), [['0', 'remote', '2'], ['1', 'segment', '3'], ['2', 'cache', '1']]);
  assert.is(cells.find((c) => c['data-count'] === '3')['fill-opacity'], '1');
});

test('more than four regions: the four busiest are drawn and the others named', () => {
  const events = ['a', 'b', 'c', 'd', 'e', 'f'].flatMap((region, k) => Array.from({ length: 10 - k }, (_, i) => ev(i, i, 'segment', region)));
  const root = parse(renderHeatmap(events));
  assert.equal(root.g.filter((g: any) => g['data-node'] === undefined).map((g: any) => g['data-region']), ['a', 'b', 'c', 'd']);
  assert.ok(root.text.some((t: any) => String(t['#text']).includes('not drawn: e (6), f (5)')));
});

test('region names and every other text are XML-escaped', () => {
  const events = [ev(0, 1, 'remote', '<script>&"\'</script>'), ev(5, 2, 'cache', '<script>&"\'</script>')];
  const svg = renderHeatmap(events);
  assert.not.ok(svg.includes('<script>'));
  checkHeatmap(svg, events);
  assert.is(parse(svg).g[0]['data-region'], '<script>&"\'</script>');
});

test('no events is a clear error, not an empty picture', () => {
  assert.throws(() => renderHeatmap([]), /at least one fault event/);
});

test.run();
