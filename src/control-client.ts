// Client of a node's control socket (`<socketDir>/control.sock`).
import fs from 'node:fs';
import path from 'node:path';
import { UnixChannel } from './uffd/index.js';
import { NaplusError } from './errors.js';
import { checkNodeOwner } from './client/node-owner.js';

/** Accepts a node's socket directory or its control socket path. */
export function controlSocketPath(nodeOrDir: string): string {
  try {
    if (fs.statSync(nodeOrDir).isDirectory()) return path.join(nodeOrDir, 'control.sock');
  } catch {
    // not there: reported when connecting
  }
  return nodeOrDir;
}

/** Connects to a node's control socket, once its listener is shown to be a node we trust (see node-owner.ts). */
export function connectControl(nodeOrDir: string): UnixChannel {
  const socket = controlSocketPath(nodeOrDir);
  let channel: UnixChannel;
  try {
    channel = UnixChannel.connect(socket);
  } catch (err) {
    throw new NaplusError('ENOTCONN', `No Naplus node answers at ${socket} (${(err as Error).message}); start one with 'naplus-mount --cluster <file> --node <id> --socket-dir ${path.dirname(socket)}', or pass the --socket-dir of a running node`);
  }
  try {
    checkNodeOwner(channel, socket);
  } catch (err) {
    channel.close();
    throw err;
  }
  return channel;
}

/** One request, one JSON answer. */
export function controlRequest<T>(nodeOrDir: string, method: string): Promise<T> {
  const channel = connectControl(nodeOrDir);
  return new Promise<T>((resolve, reject) => {
    channel.start({
      message(data) {
        try {
          const reply = JSON.parse(data.toString()) as T & { error?: string };
          if (reply.error) reject(new NaplusError('EINVAL', reply.error));
          else resolve(reply);
        } catch (err) {
          reject(new NaplusError('EPROTO', `The node at ${nodeOrDir} answered with something that is not JSON (${(err as Error).message})`));
        }
        channel.close(); // after settling: closing reports a close, which rejects no more
      },
      close(reason) {
        reject(reason ?? new NaplusError('ECONNRESET', `The node at ${nodeOrDir} closed the control connection`));
      },
    });
    channel.send(Buffer.from(JSON.stringify({ method })));
  });
}
