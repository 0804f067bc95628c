// The gateway: how the host reaches its guests' agents. The guests' network lives in a
// network namespace of its own (nothing of it shows on the machine's network), and this
// process runs in that namespace: for each guest it listens on a unix socket (a file,
// so visible from the host's side) and pipes every connection to the guest's agent.
// It only moves bytes; the agent protocol authenticates end to end.
//   ip netns exec <ns> node gateway.js <socket dir> g1=10.78.0.11 g2=10.78.0.12[:port] ...
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { AGENT_PORT } from './agent-protocol.js';

const [dir, ...guests] = process.argv.slice(2);
if (!dir || guests.length === 0) throw new Error('usage: gateway.js <socket dir> <guest>=<address>[:port] ...');
fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
process.umask(0o077); // sockets for root alone

for (const spec of guests) {
  const [guest, target] = spec.split('=') as [string, string];
  const [address, port] = target.split(':') as [string, string | undefined];
  const socketPath = path.join(dir, `${guest}.sock`);
  fs.rmSync(socketPath, { force: true });
  net.createServer((client) => {
    const agent = net.connect(Number(port ?? AGENT_PORT), address);
    // An end travels through the pipes after the bytes before it (the agent's last frame
    // and its close arrive together); only an error cuts the other side off at once.
    client.on('error', () => agent.destroy());
    agent.on('error', () => client.destroy());
    client.pipe(agent);
    agent.pipe(client);
  }).listen(socketPath);
}
console.error(`naplus-gateway: ${guests.length} guest(s) reachable through ${dir}`);
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => process.exit(0));
