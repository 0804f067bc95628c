// `naplus vm exec` and `naplus vm status` as a user runs them, and what a guest sees:
// the host's files at the same paths (its own writes stay in the guest), and at the
// same PCI address in every guest an ivshmem device whose BAR2 is its host's segment
// file: the same path shows each guest its own host's memory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GUEST_BAR } from '../../src/vm/qemu.js';
import { inGuest, runInGuest, vm } from './helpers/guest-cluster.js';

const state = vm();
const UFFD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/uffd/index.js');
const NAPLUS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../cli/naplus.js');

function exec(guest: string, argv: string[], input = '') {
  const [cmd, ...args] = inGuest(state, guest)(argv);
  return spawnSync(cmd!, args, { input, encoding: 'utf8' });
}

test('vm exec: stdio, exit code and signal come through; the guest sees this machine\'s files, its writes stay its own', () => {
  const hostFile = fs.mkdtempSync(path.join(os.tmpdir(), 'naplus-vmexec-'));
  fs.writeFileSync(path.join(hostFile, 'from-host'), 'written on the host\n');
  try {
    const r = exec('g1', ['sh', '-c', `cat; cat ${hostFile}/from-host; hostname; echo in-guest > ${hostFile}/from-guest; cat ${hostFile}/from-guest; echo to-stderr >&2; exit 7`], 'piped in\n');
    assert.equal([r.status, r.signal, r.stdout, r.stderr], [7, null, 'piped in\nwritten on the host\ng1\nin-guest\n', 'to-stderr\n']);
    assert.not.ok(fs.existsSync(path.join(hostFile, 'from-guest')), 'the guest\'s write stayed in its overlay');
    const killed = exec('g2', ['sh', '-c', 'kill -BUS $$']);
    assert.equal([killed.status, killed.signal], [null, 'SIGBUS'], 'a command ended by a signal ends vm exec with the same signal');
    const none = exec('g9', ['true']);
    assert.equal([none.status, none.stderr.trim()], [1, `naplus: Virtual cluster '${state.name}' has no guest 'g9'; its guests are g1, g2, g3, g4`]);
  } finally {
    fs.rmSync(hostFile, { recursive: true, force: true });
  }
});

test('every guest has the ivshmem device at the same address, and its BAR2 is its own host\'s segment file', async () => {
  const marks = state.hosts.map((h, i) => {
    const mark = Buffer.from(`host ${h.name} mark ${i}-${process.pid}`);
    const fd = fs.openSync(h.segmentFile, 'r+');
    fs.writeSync(fd, mark, 0, mark.length, 1 << 20);
    fs.closeSync(fd);
    return mark.toString();
  });
  // In the guest: the device's ids, then 64 bytes at 1 MiB through an mmap of each BAR2 mapping.
  const script = `
    import fs from 'node:fs';
    import { Mapping } from '${UFFD}';
    const dir = '${path.dirname(GUEST_BAR)}';
    const ids = ['vendor', 'device', 'enable'].map((f) => fs.readFileSync(dir + '/' + f, 'utf8').trim());
    const seen = ['resource2', 'resource2_wc'].map((file) => {
      const fd = fs.openSync(dir + '/' + file, 'r+');
      const m = Mapping.map(fd, fs.fstatSync(fd).size);
      const b = Buffer.alloc(64);
      m.read(1 << 20, b);
      return b.toString().replace(/\\0+$/, '');
    });
    console.log(JSON.stringify({ ids, seen }));`;
  for (const g of state.guests) {
    const r = await runInGuest(state, g.name, [process.execPath, '--input-type=module', '-e', script]);
    assert.is(r.code, 0, r.stderr);
    const mark = marks[state.hosts.findIndex((h) => h.name === g.host)]!;
    assert.equal(JSON.parse(r.stdout), { ids: ['0x1af4', '0x1110', '1'], seen: [mark, mark] }, `${g.name} (on ${g.host})`);
  }
});

test('vm status lists every guest running, with its agent up', () => {
  const r = spawnSync(process.execPath, [NAPLUS, 'vm', 'status', '--name', state.name], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  for (const g of state.guests) assert.match(r.stdout, new RegExp(`^${g.name}\\s+${g.host}\\s+${g.address.replace(/\./g, '\\.')}\\s+running \\(pid ${g.pid}\\)\\s+up \\d+ s`, 'm'));
});

test.run();
