// Kills one TCP connection between two live nodes with `ss -K` (sock_diag destroy,
// CONFIG_INET_DIAG_DESTROY): the socket is closed under its owner, who sees ECONNABORTED,
// and the peer gets a RST. The lower node id dials, so the connection is the dialer's
// socket to the other node's listen address; `ss -p` tells the dialer's socket from
// those of other nodes of the same host, and the kill is filtered by its local port, so
// exactly one socket goes. Runs in the dialer's network namespace when hosts have them.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { inNamespace } from '../../src/netns.js';
import type { FaultEnv } from './env.js';

const run = promisify(execFile);

async function ss(ns: string | undefined, args: string[]): Promise<string[]> {
  const [cmd, ...argv] = inNamespace(ns, ['ss', '-H', '-t', '-n', ...args]);
  const { stdout } = await run(cmd!, argv, { encoding: 'utf8' });
  return stdout.split('\n').filter((l) => l.trim() !== '');
}

/** Why sockets cannot be destroyed here, or undefined when they can. */
export async function socketKillUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return '`ss -K` needs CAP_NET_ADMIN (root)';
  try {
    await ss(undefined, ['-K', 'state', 'established', 'dst', '127.0.0.1:1']); // kills nothing, proves the kernel takes the request
    return undefined;
  } catch (err) {
    return `\`ss -K\` failed (${(err as Error).message.split('\n')[0]}): this kernel may lack CONFIG_INET_DIAG_DESTROY`;
  }
}

/** Kills the connection between nodes `a` and `b`; says how many sockets went, and which. */
export async function killConnection(env: FaultEnv, a: number, b: number): Promise<{ killed: number; detail: string }> {
  const [dialer, listener] = a < b ? [a, b] : [b, a];
  const ns = env.nodeFile(dialer).netns;
  const dst = env.listenOf(listener);
  const pid = env.pidOf(dialer);
  let local: string | undefined;
  // A link may be between connections (a peer just redialled): look again for a moment.
  for (let look = 0; look < 10 && !local; look++) {
    if (look > 0) await new Promise((r) => setTimeout(r, 100));
    const mine = (await ss(ns, ['-p', 'state', 'established', 'dst', dst])).filter((l) => l.includes(`pid=${pid},`));
    local = mine[0]?.trim().split(/\s+/)[2]; // columns: Recv-Q Send-Q Local:Port Peer:Port Process
  }
  if (!local) return { killed: 0, detail: `node ${dialer} had no connection to node ${listener} (${dst}) for 1 s` };
  const port = local.slice(local.lastIndexOf(':') + 1);
  const killed = await ss(ns, ['-K', 'state', 'established', 'dst', dst, 'sport', '=', `:${port}`]);
  return { killed: killed.length, detail: `node ${dialer} ${local} -> node ${listener} ${dst}` };
}
