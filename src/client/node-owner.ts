// Before a process hands anything to a node (an app its userfaultfd and memory, a tool
// its trust in the stats it reads), it checks that the process listening on the socket
// is the node it expects: one that runs as root, as this process's own user, or as the
// user named as the node's (`nodeUid`, or $NAPLUS_NODE_UID). Any other user listening
// there has taken the socket over, through a socket directory it could write.
import type { UnixChannel } from '../uffd/index.js';
import { NaplusError } from '../errors.js';

/** The uid a node may run as besides root and our own: `nodeUid`, else $NAPLUS_NODE_UID. */
function allowedNodeUid(nodeUid: number | undefined): number | undefined {
  if (nodeUid !== undefined) return nodeUid;
  const env = process.env.NAPLUS_NODE_UID;
  if (env === undefined || env === '') return undefined;
  if (!/^\d+$/.test(env)) throw new NaplusError('EINVAL', `NAPLUS_NODE_UID must be a numeric uid, got '${env}'`);
  return Number(env);
}

export function checkNodeOwner(channel: UnixChannel, socketPath: string, nodeUid?: number): void {
  const allowed = allowedNodeUid(nodeUid);
  const me = process.geteuid!();
  const { uid, pid } = channel.peer();
  if (uid === 0 || uid === me || uid === allowed) return;
  throw new NaplusError(
    'EPERM',
    `The process listening on ${socketPath} (pid ${pid}) runs as uid ${uid}: not root, not this process's user (uid ${me})` +
      `${allowed === undefined ? '' : `, not the node user allowed (uid ${allowed})`}. It may be posing as the node, so nothing was sent to it. ` +
      `If a node of yours runs as uid ${uid}, allow it with NAPLUS_NODE_UID=${uid} (or the nodeUid option); otherwise check who can write ${socketPath.replace(/\/[^/]*$/, '') || '/'}`,
  );
}
