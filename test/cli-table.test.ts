// Tables for a terminal: a table too wide for it loses the columns named first to go,
// says which, and then fits; without a width (a pipe) it is whole.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fitTable, formatTable } from '../cli/table.js';

const rows = [1, 2, 3].map((node) => ({ node, host: `h${node}`, faults: 123456, cache: 1, segment: 2, remote: 3, writebacks: 99999, evictions: 88888, 'MiB out/in': '1.0/2.0' }));
const widest = (t: string) => Math.max(...t.split('\n').map((l) => l.length));

test('a table fits the width by dropping the named columns in order, and says so', () => {
  const whole = formatTable(rows);
  assert.ok(widest(whole) > 50);
  const fitted = fitTable(rows, 50, ['writebacks', 'evictions', 'MiB out/in', 'host']);
  const [table, note] = [fitted.slice(0, fitted.lastIndexOf('\n')), fitted.slice(fitted.lastIndexOf('\n') + 1)];
  assert.ok(widest(table) <= 50, table);
  assert.match(table.split('\n')[0]!, /^node\s+host\s+faults\s+cache\s+segment\s+remote$/);
  assert.is(note, "(not shown, for the terminal's width: writebacks, evictions, MiB out/in; --json has every figure)");
});

test('no width, or room enough: the whole table', () => {
  assert.is(fitTable(rows, undefined, ['host']), formatTable(rows));
  assert.is(fitTable(rows, 500, ['host']), formatTable(rows));
});

test.run();
