// prepack: puts the native helper built here where node-gyp-build looks in an installed
// package, prebuilds/<platform>-<arch>/naplus_uffd.napi.<libc>.node, so that installing
// the package on such a machine compiles nothing (the install script then finds it
// loads and stops). Other platforms build from the sources the package also ships.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const built = path.join(root, 'build/Release/naplus_uffd.node');
if (!fs.existsSync(built)) {
  console.error(`prebuild: ${built} is missing; run \`npm run build\` first`);
  process.exit(1);
}
// N-API keeps the binary good across Node versions; the C library is what it links.
const libc = process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl';
const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
fs.rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
fs.mkdirSync(dir, { recursive: true });
const target = path.join(dir, `naplus_uffd.napi.${libc}.node`);
fs.copyFileSync(built, target);
console.error(`prebuild: ${path.relative(root, target)}`);
