// Real userfaultfd faults: an app process touches a registered memfd mapping and this
// process resolves MISSING, MINOR and WP faults through the native helper.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startApp, type AppUnderTest } from './helpers/uffd-app.js';
import type { UffdEvent } from '../src/uffd/index.js';

const PAGE = 4096;

/** Serves the app's faults with `resolve`, recording every event. */
function serve(app: AppUnderTest, resolve: (e: Extract<UffdEvent, { kind: 'fault' }>) => void): UffdEvent[] {
  const seen: UffdEvent[] = [];
  app.uffd.watch(
    (events) => {
      for (const e of events) {
        seen.push(e);
        if (e.kind === 'fault') resolve(e);
      }
    },
    (err) => {
      throw err;
    },
  );
  return seen;
}

const pageOf = (app: AppUnderTest, address: number) => Math.floor((address - app.base) / PAGE);
const fill = (app: AppUnderTest, page: number, byte: number) => app.mapping.write(page * PAGE, Buffer.alloc(PAGE, byte));
const readPage = async (app: AppUnderTest, page: number, pages = 1) =>
  Buffer.from((await app.request({ op: 'read', offset: page * PAGE, length: pages * PAGE })).data, 'base64');

test('a read miss is filled through our mapping, mapped read-only, and a later write faults WP', async () => {
  const app = await startApp(8);
  try {
    const seen = serve(app, (e) => {
      const page = pageOf(app, e.address);
      if (e.wp) return app.uffd.writeProtect(e.address, PAGE, false);
      fill(app, page, page + 1);
      app.uffd.continue(e.address, PAGE, { wp: true });
    });
    const bytes = await readPage(app, 2);
    assert.ok(bytes.equals(Buffer.alloc(PAGE, 3)), 'app sees the bytes we filled');
    assert.equal(seen.length, 1);
    assert.equal(seen[0], { kind: 'fault', address: app.base + 2 * PAGE, write: false, wp: false, minor: false, tid: (seen[0] as any).tid });

    await readPage(app, 2);
    assert.equal(seen.length, 1, 'a mapped page does not fault again');

    const w = await app.request({ op: 'write', offset: 2 * PAGE + 10, data: Buffer.from('hello').toString('base64') });
    assert.equal(w, { ok: true });
    assert.equal(seen.length, 2);
    const wp = seen[1] as Extract<UffdEvent, { kind: 'fault' }>;
    assert.ok(wp.wp && wp.write, 'the write to a read-only page is a WP fault');
    const got = Buffer.alloc(5);
    app.mapping.read(2 * PAGE + 10, got);
    assert.is(got.toString(), 'hello', 'the write landed in the shared file');
  } finally {
    await app.stop();
  }
});

test('a page already in the memfd gives a MINOR fault and is mapped without a copy', async () => {
  const app = await startApp(8);
  try {
    fill(app, 5, 0xab);
    const seen = serve(app, (e) => app.uffd.continue(e.address, PAGE, { wp: true }));
    const bytes = await readPage(app, 5);
    assert.ok(bytes.equals(Buffer.alloc(PAGE, 0xab)));
    assert.equal(seen.length, 1);
    assert.ok((seen[0] as any).minor, 'minor flag set');
  } finally {
    await app.stop();
  }
});

test('one fault can resolve a 16-page range, so a scan of 16 pages faults once', async () => {
  const app = await startApp(32);
  try {
    const seen = serve(app, (e) => {
      const first = pageOf(app, e.address);
      for (let p = first; p < first + 16; p++) fill(app, p, p);
      app.uffd.continue(app.base + first * PAGE, 16 * PAGE, { wp: true });
    });
    const { bytes } = await app.request({ op: 'first-bytes', offset: 4 * PAGE, pages: 16 });
    assert.equal(bytes, Array.from({ length: 16 }, (_, p) => 4 + p));
    assert.equal(seen.length, 1);
  } finally {
    await app.stop();
  }
});

test('punching a hole drops the page from the app: the next access is a MISSING fault', async () => {
  const app = await startApp(4);
  try {
    let generation = 1;
    const seen = serve(app, (e) => {
      fill(app, pageOf(app, e.address), generation);
      app.uffd.continue(e.address, PAGE, { wp: true });
    });
    assert.is((await readPage(app, 1))[0], 1);
    app.memfd.punchHole(PAGE, PAGE);
    generation = 2;
    assert.is((await readPage(app, 1))[0], 2, 'the app sees the new contents');
    assert.equal(seen.length, 2);
    assert.not.ok((seen[1] as any).minor, 'second fault is MISSING again');
  } finally {
    await app.stop();
  }
});

test('a write to a missing page is resolved writable in one step', async () => {
  const app = await startApp(8);
  try {
    const seen = serve(app, (e) => {
      fill(app, pageOf(app, e.address), 0); // CONTINUE needs the page in the file first
      app.uffd.continue(e.address, PAGE, { wp: !e.write });
    });
    await app.request({ op: 'write', offset: 7 * PAGE, data: Buffer.from('xyz').toString('base64') });
    assert.equal(seen.length, 1, 'no second (WP) fault');
    assert.ok((seen[0] as any).write);
    const got = Buffer.alloc(3);
    app.mapping.read(7 * PAGE, got);
    assert.is(got.toString(), 'xyz');
  } finally {
    await app.stop();
  }
});

test('UFFDIO_COPY resolves a missing fault from a buffer mapped here', async () => {
  const app = await startApp(4);
  const { Memfd } = await import('../src/uffd/index.js');
  const source = Memfd.create('source', PAGE);
  const src = source.map();
  src.write(0, Buffer.alloc(PAGE, 0x5a));
  try {
    serve(app, (e) => app.uffd.copy(e.address, src.address, PAGE, { wp: true }));
    assert.ok((await readPage(app, 3)).equals(Buffer.alloc(PAGE, 0x5a)));
    const mine = Buffer.alloc(1);
    app.mapping.read(3 * PAGE, mine);
    assert.is(mine[0], 0x5a, 'COPY put the page into the shared file');
  } finally {
    src.unmap();
    source.close();
    await app.stop();
  }
});

test('madvise(DONTNEED) in the app arrives as a remove event', async () => {
  const app = await startApp(8);
  try {
    const seen = serve(app, (e) => app.uffd.continue(e.address, PAGE, { wp: true }));
    await app.request({ op: 'dontneed', offset: 2 * PAGE, length: 3 * PAGE });
    const removes = seen.filter((e) => e.kind === 'remove');
    assert.equal(removes, [{ kind: 'remove', start: app.base + 2 * PAGE, end: app.base + 5 * PAGE }]);
  } finally {
    await app.stop();
  }
});

test('many faults in a burst arrive batched and all complete', async () => {
  const app = await startApp(64);
  try {
    let batches = 0;
    app.uffd.watch(
      (events) => {
        batches++;
        for (const e of events) if (e.kind === 'fault') app.uffd.continue(e.address, PAGE, { wp: true });
      },
      (err) => {
        throw err;
      },
    );
    for (let p = 0; p < 64; p++) fill(app, p, p);
    const { bytes } = await app.request({ op: 'first-bytes', offset: 0, pages: 64 });
    assert.equal(bytes, Array.from({ length: 64 }, (_, p) => p));
    assert.ok(batches >= 1 && batches <= 64);
  } finally {
    await app.stop();
  }
});

test('a poisoned fault ends the access with SIGBUS instead of hanging it', async () => {
  const app = await startApp(4);
  try {
    serve(app, (e) => app.uffd.poison(e.address, PAGE));
    void app.request({ op: 'read', offset: PAGE, length: 16 });
    const [code, signal] = await new Promise<[number | null, string | null]>((r) => app.child.once('exit', (c, s) => r([c, s])));
    assert.is(code, null);
    assert.is(signal, 'SIGBUS');
  } finally {
    await app.stop();
  }
});

test.run();
