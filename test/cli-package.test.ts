// The package as npm delivers it: packed from this checkout (prepack builds everything
// and puts the native helper in prebuilds/), its file list is what runs and
// nothing else, and installed into a project it imports with no compiler run: with its
// install script (which finds the prebuild loads) and without (--ignore-scripts). With
// no native build at all, the import fails naming the remedy, and the remedy works.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './helpers/cli.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-package-'));

function sh(cmd: string, args: string[], options: SpawnSyncOptions = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000, ...options });
  assert.is(r.status, 0, `${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout as string;
}

/**
 * Packs this checkout. `npm test` has just built it, so prepack's build is incremental
 * (make and tsc find nothing to do: the addon and the JS the other tests run are not
 * rewritten), and it writes only prebuilds/ and the tarball (in a temp dir).
 */
function pack(): { tarball: string; files: string[] } {
  // The build scripts print to stdout too: the JSON is what comes last.
  const out = sh('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const [info] = JSON.parse(out.slice(out.search(/^\[\s*\{\s*"id"/m)));
  return { tarball: path.join(work, info.filename), files: info.files.map((f: { path: string }) => f.path) };
}

function project(name: string, installArgs: string[]): string {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', type: 'module', private: true }));
  sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...installArgs, packed.tarball], { cwd: dir });
  return dir;
}

const IMPORT = `import('naplus').then((m) => console.log(JSON.stringify(Object.keys(m).sort())), (e) => { console.log(JSON.stringify({ code: e.code, message: e.message })); process.exit(3); })`;
const load = (dir: string) => spawnSync(process.execPath, ['-e', IMPORT], { cwd: dir, encoding: 'utf8' });

const packed = pack();

test('the tarball holds what runs: built JS and types, the native sources and prebuild, the docs', () => {
  const files = packed.files;
  for (const must of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/cli/naplus.js', 'dist/cli/naplus-mount.js',
    'dist/cli/naplus-fault-trace.js', 'dist/examples/matmul.js', 'binding.gyp', 'src/uffd/native/addon.cc', 'src/uffd/native/common.h', 'docs/naplus-mount.service',
    'prebuilds/linux-x64/naplus_uffd.napi.glibc.node']) {
    assert.ok(files.includes(must), `${must} is in the package`);
  }
  const stray = files.filter((f) => /^(test|bench|dist\/test|dist\/bench|\.ci|scripts|coverage|build)\//.test(f) || /\.(map|tgz|tsbuildinfo)$/.test(f) || (f.startsWith('src/') && !f.startsWith('src/uffd/native/')));
  assert.equal(stray, [], 'no tests, benchmarks, CI, source maps or tarballs');
  // Built modules and their types only (about 180 files): a stray directory would show here.
  assert.ok(files.length < 250, `${files.length} files`);
});

test('installed with its install script: it imports, and nothing was compiled', () => {
  const dir = project('with-scripts', []);
  const r = load(dir);
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.ok(JSON.parse(r.stdout).includes('attach'));
  assert.not.ok(fs.existsSync(path.join(dir, 'node_modules/naplus/build')), 'the prebuild loaded, so the install script built nothing');
  assert.is(sh('npx', ['naplus', '--version'], { cwd: dir }).trim(), JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
  // Every type the API's signatures use can be named from outside (else declaration emit fails, TS2742).
  fs.writeFileSync(path.join(dir, 'use.ts'), `import { attach, type Region, type NaplusErrorCode } from 'naplus';
export const attached = (r: Region) => r.attached;
export const info = (r: Region) => r.attached.info;
export const stats = (r: Region) => r.stats();
export const code: NaplusErrorCode = 'ENOTCONN';
export const region = () => attach('data');
`);
  sh(path.join(ROOT, 'node_modules/.bin/tsc'), ['--declaration', '--emitDeclarationOnly', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules/@types'), '--outDir', 'types', 'use.ts'], { cwd: dir });
});

test('installed with --ignore-scripts: the prebuild loads; without one, the error names the remedy, which works', () => {
  const dir = project('ignore-scripts', ['--ignore-scripts']);
  let r = load(dir);
  assert.is(r.status, 0, r.stdout + r.stderr);
  fs.rmSync(path.join(dir, 'node_modules/naplus/prebuilds'), { recursive: true });
  r = load(dir);
  assert.is(r.status, 3, r.stdout + r.stderr);
  const err = JSON.parse(r.stdout);
  assert.is(err.code, 'ENOBUILD');
  assert.match(err.message, /^The native helper of naplus is not built for this platform \(linux-x64, Node [\d.]+\): No native build was found.* Build it with `npm rebuild naplus`/);
  // The remedy compiles the helper (a minute on a busy machine): `npm run test:package` runs it.
  if (!process.env.NAPLUS_TEST_REBUILD) return console.log('SKIP: `npm rebuild naplus` from source (npm run test:package runs it)');
  sh('npm', ['rebuild', 'naplus'], { cwd: dir });
  r = load(dir);
  assert.is(r.status, 0, r.stdout + r.stderr);
});

test.after(() => fs.rmSync(work, { recursive: true, force: true }));

test.run();
