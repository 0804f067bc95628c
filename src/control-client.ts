// Client of a node's control socket (`<socketDir>/control.sock`).
import fs from 'node:fs';
import path from 'node:path';
import { UnixChannel } from './uffd/index.js';
import { NaplusError } from './errors.js';

/** Accepts a node's socket directory or its control socket path. */
export function controlSocketPath(nodeOrDir: string): string {
  try {
    if (fs.statSync(nodeOrDir).isDirectory()) return path.join(nodeOrDir, 'control.sock');
  } catch {
    // not there: reported when connecting
  }
  return nodeOrDir;
}

export function connectControl(nodeOrDir: string): UnixChannel {
  const socket = controlSocketPath(nodeOrDir);
  try {
    return UnixChannel.connect(socket);
  } catch (err) {
    throw new NaplusError('ENOTCONN', `No Naplus node answers at ${socket} (${(err as Error).message}); start one with 'naplus-mount --cluster <file> --node <id> --socket-dir ${path.dirname(socket)}', or pass the --socket-dir of a running node`);
  }
}

/** One request, one JSON answer. */
export function controlRequest<T>(nodeOrDir: string, method: string): Promise<T> {
  const channel = connectControl(nodeOrDir);
  return new Promise<T>((resolve, reject) => {
    channel.start({
      message(data) {
        const reply = JSON.parse(data.toString()) as T & { error?: string };
        if (reply.error) reject(new NaplusError('EINVAL', reply.error));
        else resolve(reply);
        channel.close(); // after settling: closing reports a close, which rejects no more
      },
      close(reason) {
        reject(reason ?? new NaplusError('ECONNRESET', `The node at ${nodeOrDir} closed the control connection`));
      },
    });
    channel.send(Buffer.from(JSON.stringify({ method })));
  });
}
