// Readiness for systemd (Type=notify): sd_notify(3)'s protocol, one datagram of
// "KEY=value" lines to the unix socket named in $NOTIFY_SOCKET (a path, or an abstract
// name written with a leading '@'). Node cannot send unix datagrams, so the native
// helper sends it. Outside systemd there is no NOTIFY_SOCKET and nothing is sent.
import { native } from './uffd/native.js';
import { NaplusError } from './errors.js';

/** Sends `state` (e.g. { READY: '1', STATUS: '…' }) if systemd asked for it; returns whether it did. */
export function sdNotify(state: Record<string, string>, env: NodeJS.ProcessEnv = process.env): boolean {
  const socket = env.NOTIFY_SOCKET;
  if (!socket) return false;
  if (!socket.startsWith('/') && !socket.startsWith('@')) {
    throw new NaplusError('EINVAL', `NOTIFY_SOCKET must be an absolute path or an abstract socket name starting with '@', not '${socket}'`);
  }
  const address = Buffer.from(socket);
  if (socket.startsWith('@')) address[0] = 0;
  const message = Object.entries(state).map(([k, v]) => `${k}=${v.replace(/\n/g, ' ')}`).join('\n');
  try {
    native.sendDatagram(address, Buffer.from(message));
  } catch (err) {
    throw new NaplusError('EIO', `Telling systemd (NOTIFY_SOCKET ${socket}) '${message.replace(/\n/g, ', ')}' failed: ${(err as Error).message}`);
  }
  return true;
}
