// The README cannot drift: every shell block in it is marked, and run as written (`run`),
// or each of its commands and options checked against the command's --help
// (`commands`), or left out with a reason (`skip`); the JavaScript snippet runs against
// a local cluster started as the README says. No command may rely on a bare `naplus…`
// on the PATH (after `npm ci` they are not there: `npx` is).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, privateRuntimeDir } from './helpers/cli.js';

interface Block {
  kind: string;
  lang: string;
  code: string;
  line: number;
}

const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const blocks: Block[] = [];
{
  const lines = README.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w+)$/.exec(lines[i]!);
    if (!open) continue;
    const end = lines.indexOf('```', i + 1);
    const marker = /^<!-- readme-test: (\w+)/.exec(lines[i - 1] ?? '');
    blocks.push({ kind: marker?.[1] ?? 'none', lang: open[1]!, code: lines.slice(i + 1, end).join('\n'), line: i + 1 });
    i = end;
  }
}
const env: NodeJS.ProcessEnv = { ...process.env, XDG_RUNTIME_DIR: privateRuntimeDir() };
delete env.NAPLUS_SOCKET_DIR;

function bash(script: string, cwd = ROOT): { code: number | null; out: string } {
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { cwd, env, encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

test('every shell and JavaScript block is marked, and none runs a bare naplus command', () => {
  for (const b of blocks.filter((x) => ['sh', 'js'].includes(x.lang))) {
    assert.ok(['run', 'commands', 'skip', 'js'].includes(b.kind), `README line ${b.line}: a ${b.lang} block without a readme-test marker`);
    if (b.kind === 'skip') continue;
    for (const l of b.code.split('\n')) assert.not.match(l, /(^|[;&|(]\s*|\bdo\s+)naplus(-mount|-fault-trace)?\s/, `README line ${b.line}: '${l}' needs npx`);
  }
  assert.ok(blocks.filter((b) => b.kind === 'run').length >= 2);
});

test('the commands of `commands` blocks exist, with the options the README gives them', () => {
  for (const b of blocks.filter((x) => x.kind === 'commands')) {
    for (const line of b.code.split('\n')) {
      for (const part of line.replace(/\s+#.*$/, '').split('&&').map((p) => p.trim()).filter(Boolean)) {
        const words = part.split(/\s+/);
        if (words[0] === 'npm') {
          const script = words[1] === 'run' ? words[2]! : words[1]!; // `npm run x`, or `npm test`
          assert.ok(script === 'ci' || JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts[script], part);
          continue;
        }
        assert.is(words[0], 'npx', `README line ${b.line}: ${part}`);
        const sub = ['naplus', 'naplus-fault-trace'].includes(words[1]!) ? [words[2]!] : [];
        const help = spawnSync('npx', [words[1]!, ...sub, '--help'], { cwd: ROOT, env, encoding: 'utf8' });
        assert.is(help.status, 0, `${part}: ${help.stderr}`);
        for (const flag of words.filter((w) => w.startsWith('-'))) assert.ok(help.stdout.includes(flag), `README line ${b.line}: ${words[1]} ${sub.join(' ')} has no option ${flag}`);
      }
    }
  }
});

test('`run` blocks run as written', () => {
  for (const b of blocks.filter((x) => x.kind === 'run')) {
    const r = bash(b.code);
    assert.is(r.code, 0, `README line ${b.line}:\n${r.out}`);
    if (b.code.includes('counter-table')) assert.match(r.out, /"ok":true/, `the workers' result:\n${r.out}`);
    assert.match(r.out, /Cluster 'local' is down/);
  }
});

test('the JavaScript snippet runs against `npx naplus cluster up`', () => {
  const [snippet] = blocks.filter((b) => b.kind === 'js');
  const project = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-readme-'));
  // As npm installs it: the package, and its commands in node_modules/.bin.
  fs.mkdirSync(path.join(project, 'node_modules/.bin'), { recursive: true });
  fs.symlinkSync(ROOT, path.join(project, 'node_modules/naplus'));
  for (const bin of ['naplus', 'naplus-mount', 'naplus-fault-trace']) fs.symlinkSync(`../naplus/dist/cli/${bin}.js`, path.join(project, 'node_modules/.bin', bin));
  fs.writeFileSync(path.join(project, 'app.mjs'), `${snippet!.code}\nconsole.log('snippet done');\n`);
  try {
    const r = bash(`npx naplus cluster up --nodes-per-host 1 >/dev/null
trap 'npx naplus cluster down >/dev/null' EXIT
cd ${JSON.stringify(project)}
env $(npx naplus cluster env 1) node app.mjs`);
    assert.is(r.code, 0, r.out);
    assert.match(r.out, /snippet done/);
  } finally {
    fs.rmSync(project, { recursive: true, force: true });
  }
});

test.run();
