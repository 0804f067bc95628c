// Fault path: time per 4 KiB read fault, served by the Naplus helper with the handler
// in JS (on the Node event loop) against a minimal C handler doing the same work
// (copy from a segment file into the region memfd, one UFFDIO_CONTINUE with WP), for
// 1 and 16 pages resolved per fault. The app that faults is the same C program for
// both, so only the handler differs.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { Mapping, Memfd, UnixServer, Userfaultfd, PAGE_SIZE } from '../src/uffd/index.js';
import { compileC } from './lib/cc.js';
import { meets, median, type Bench } from './lib/report.js';

interface Scan {
  nsPerPage: number[];
  checksumOk: boolean;
}

function makeSegment(dir: string, pages: number): { file: string; expected: number } {
  const file = path.join(dir, 'segment');
  const data = Buffer.alloc(pages * PAGE_SIZE);
  let expected = 0;
  for (let p = 0; p < pages; p++) {
    data[p * PAGE_SIZE] = p & 0xff;
    expected += p & 0xff;
  }
  fs.writeFileSync(file, data);
  return { file, expected };
}

/** Runs the toucher against a socket; resolves with its per-round figures. */
function touch(toucher: string, sock: string, pages: number, rounds: number, expected: number): Promise<Scan> {
  return new Promise((resolve, reject) => {
    const child = spawn(toucher, [sock, String(pages), String(rounds)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const nsPerPage: number[] = [];
    let checksumOk = true;
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const [ns, sum] = line.split(' ').map(Number);
      nsPerPage.push(ns! / pages);
      checksumOk &&= sum === expected;
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve({ nsPerPage: nsPerPage.slice(1), checksumOk }) : reject(new Error(`toucher exited ${code}`))));
  });
}

async function withC(handler: string, toucher: string, dir: string, seg: string, pages: number, batch: number, rounds: number, expected: number): Promise<Scan> {
  const sock = path.join(dir, `c-${batch}.sock`);
  const child = spawn(handler, [sock, String(pages), String(batch), seg], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => readline.createInterface({ input: child.stdout! }).once('line', () => resolve()));
  try {
    return await touch(toucher, sock, pages, rounds, expected);
  } finally {
    child.kill();
  }
}

async function withJs(toucher: string, dir: string, seg: string, pages: number, batch: number, rounds: number, expected: number): Promise<Scan> {
  const sock = path.join(dir, `js-${batch}.sock`);
  const segFd = fs.openSync(seg, 'r');
  const segment = Mapping.map(segFd, pages * PAGE_SIZE, { writable: false });
  const memfd = Memfd.create('region', pages * PAGE_SIZE);
  const cache = memfd.map();
  let uffd: Userfaultfd | undefined;
  const server = UnixServer.listen(sock, (channel) => {
    channel.start({
      message(data, fds) {
        const base = Number(data.readBigUInt64LE(0));
        uffd = Userfaultfd.adopt(fds[0]!);
        const u = uffd;
        u.watch(
          (events) => {
            for (const e of events) {
              if (e.kind !== 'fault') continue;
              const page = (e.address - base) / PAGE_SIZE;
              const first = page - (page % batch);
              const bytes = Math.min(batch, pages - first) * PAGE_SIZE;
              segment.copyTo(cache, first * PAGE_SIZE, first * PAGE_SIZE, bytes);
              u.continue(base + first * PAGE_SIZE, bytes, { wp: true });
            }
          },
          (err) => {
            throw err;
          },
        );
      },
      close() {},
    });
    channel.send(Buffer.from('memfd'), [memfd.fd]);
  });
  try {
    return await touch(toucher, sock, pages, rounds, expected);
  } finally {
    server.close();
    uffd?.close();
    cache.unmap();
    segment.unmap();
    memfd.close();
    fs.closeSync(segFd);
  }
}

/**
 * The C baseline alone: µs per 4 KiB page read through the minimal C handler, `batch`
 * pages mapped per fault (1: a read fault per page), median over `rounds` scans of
 * `pages` pages. Other benchmarks compare to it.
 */
export async function cHandlerMicrosPerFault(pages: number, rounds: number, batch = 1): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-c-baseline-'));
  try {
    const { file, expected } = makeSegment(dir, pages);
    const scan = await withC(compileC('handler'), compileC('toucher'), dir, file, pages, batch, rounds, expected);
    return median(scan.nsPerPage) / 1000;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export const bench: Bench = async ({ quick, log }) => {
  const toucher = compileC('toucher');
  const handler = compileC('handler');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-fault-path-'));
  const pages = quick ? 512 : 4096;
  const rounds = quick ? 4 : 8;
  const trials = quick ? 1 : 3;
  const { file: seg, expected } = makeSegment(dir, pages);
  const rows = [];
  const figures: Record<string, number> = {};
  try {
    for (const batch of [1, 16]) {
      const c: number[] = [];
      const js: number[] = [];
      let ok = true;
      // Alternate the two handlers so that drift in machine load hits both alike.
      for (let t = 0; t < trials; t++) {
        log(`fault-path: ${batch} page(s)/fault, trial ${t + 1}/${trials}`);
        const rc = await withC(handler, toucher, dir, seg, pages, batch, rounds, expected);
        const rj = await withJs(toucher, dir, seg, pages, batch, rounds, expected);
        c.push(...rc.nsPerPage);
        js.push(...rj.nsPerPage);
        ok &&= rc.checksumOk && rj.checksumOk;
      }
      if (!ok) throw new Error('fault-path: the app read wrong bytes; the benchmark is invalid');
      const cUs = median(c) / 1000;
      const jsUs = median(js) / 1000;
      rows.push({ 'pages/fault': batch, 'C µs/page': cUs, 'JS µs/page': jsUs, 'JS/C': jsUs / cUs });
      const key = batch === 1 ? 'ratio' : `batch${batch}_ratio`;
      figures[key] = jsUs / cUs;
      figures[`c_us_per_page_${batch}`] = cUs;
      figures[`js_us_per_page_${batch}`] = jsUs;
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return {
    title: 'fault-path: 4 KiB read faults, JS handler vs C handler',
    note: `${pages} pages per scan, median of ${(rounds - 1) * trials} scans; every page a MISSING fault filled from a segment file. Target JS/C <= 1.5.`,
    rows,
    figures,
    discussion: [
      `The handler in JS costs ${figures.ratio!.toFixed(2)}x the C handler per fault with one page per fault, ${meets(figures.ratio!, 1.5)}, ` +
        `and ${figures.batch16_ratio!.toFixed(2)}x with 16 pages per fault, ${meets(figures.batch16_ratio!, 1.5)}. ` +
        `Resolving 16 pages per fault takes the cost per page from ${figures.js_us_per_page_1!.toFixed(1)} to ${figures.js_us_per_page_16!.toFixed(1)} µs: ` +
        'the fixed cost of a fault (waking the handler) dominates, so batching and readahead matter more than the language of the handler.',
    ],
  };
};
