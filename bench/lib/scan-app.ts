// A benchmark app: attaches to a region and reads one byte of each page of
// [first, first+pages), in sequential or shuffled order, printing the nanoseconds the
// scan took. Shuffled order defeats readahead, so every page is one fault.
//   node scan-app.js <socketDir> <region> <first> <pages> <seq|random>
import { attach } from '../../src/index.js';

const [socketDir, name, first, pages, order] = process.argv.slice(2);
const region = await attach(name!, { socketDir });
const from = Number(first);
const count = Number(pages);
const bytes = new Uint8Array(region.view(from * region.pageSize, count * region.pageSize));
const visit = Array.from({ length: count }, (_, i) => i);
if (order === 'random') {
  let x = 0x9e3779b9;
  for (let i = count - 1; i > 0; i--) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    [visit[i], visit[j]] = [visit[j]!, visit[i]!];
  }
}
let sum = 0;
const t0 = process.hrtime.bigint();
for (const p of visit) sum += bytes[p * region.pageSize]!;
const ns = Number(process.hrtime.bigint() - t0);
console.log(JSON.stringify({ ns, sum }));
await region.detach();
