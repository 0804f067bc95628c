// The node's links as its protocol layers use them (coherence/protocol.ts `Links`): the
// transport to its peers, or, in a single-node cluster, no peers at all.
import type { Links } from '../coherence/protocol.js';
import type { Logger } from '../log.js';
import type { Transport } from '../transport/index.js';

export function transportLinks(self: number, transport: Transport | undefined, log: Logger): Links {
  return {
    self,
    isUp: (peer) => transport?.isUp(peer) ?? false,
    send: (peer, message) => {
      try {
        transport!.send(peer, message);
      } catch (err) {
        // The link went down since: the layer hears of it through peer-down.
        log('debug', `a message of type ${message.type} to node ${peer} was dropped: ${(err as Error).message}`);
      }
    },
    handle: (type, handler) => transport?.handle(type, (peer, message) => handler(peer, message)),
    drop: (peer, reason) => {
      log('warn', `node ${peer}'s session is dropped: ${reason}`);
      transport?.dropSession(peer, reason);
    },
    onPeerDown: (listener) => void transport?.on('peer-down', (peer, _reason, _byPeer, gone) => listener(peer, gone)),
    onPeerUp: (listener) => void transport?.on('peer-up', listener),
  };
}
