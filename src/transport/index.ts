// Naplus transport: authenticated, LZ4-compressed TCP links between the nodes of a cluster.
//
//   const t = await Transport.start({ cluster, nodeId, listen: { host, port }, peers, secret });
//   t.port                                   bound port (listen port 0 picks one)
//   t.onMessage((peer, msg, reply?) => …)    one handler; `reply` is present for requests
//   t.send(peer, msg): void                  fire and forget, FIFO per peer
//   t.request(peer, msg, timeoutMs?): Promise<Message>
//   t.on('peer-up', (peer: number) => …)
//   t.on('peer-down', (peer: number, reason: NaplusError, byPeer: boolean) => …)
//   t.isUp(peer): boolean
//   t.waitForPeers(ids, timeoutMs): Promise<void>
//   t.whenWritable(peer): Promise<void>      backpressure for bulk senders
//   t.stats(): Record<peer, PeerStats>
//   await t.close()
//
// Guarantees and choices the coherence layer may rely on:
// - One link per pair of nodes; the lower id dials the higher and redials with backoff
//   (50 ms doubling to 3 s, jittered). With ephemeral ports, start nodes highest id first:
//   only a higher-id peer's port is dialed, a lower-id peer's port is only named in logs.
// - Every frame, message, request and reply on a link is delivered in the order it was
//   sent (FIFO per link); all messages produced in one tick go out in one write.
// - At most once: a message in flight when its link dies is lost. `send` to a peer that
//   is not up throws NaplusError EPEERLOST; `request` rejects with it. When a link dies,
//   every request pending on it rejects at once with EPEERLOST naming the peer and the
//   reason, and 'peer-down' fires with the same reason. `byPeer` says the peer closed
//   its end (FIN or reset: its process is gone, or it gave the link up itself) rather
//   than this end giving up on it (timeout, protocol error). 'peer-down' fires before
//   this end's socket is closed, so a peer that sees the close may rely on this node
//   having handled the loss already. A request also rejects with
//   ETIMEDOUT (no reply in time) or EREMOTE (the peer's handler threw; its message).
// - A peer is lost when its connection closes or errs, when it breaks the protocol, or
//   when nothing (data or heartbeat) came from it for `peerTimeoutMs`.
// - Page data is snapshotted (copied or compressed) inside send/request/reply; received
//   page data and binary bodies are views of the received bytes, owned by the receiver.
// - A message's pages travel in one section: all-zero pages as markers, the rest as one
//   LZ4 block, or raw when LZ4 does not shrink them. compress 'auto' (default) spends
//   LZ4 only while the link is backlogged, since on a fast link compressing a 4 KiB page
//   (11-18 µs here) costs more than sending it raw; 'always' and 'never' force it
//   (compression.ts). A message carries at most `maxFrameBytes` of page bytes
//   (pages × pageSize) and of frame; more throws E2BIG.
// - Backpressure: send() never blocks; a bulk sender awaits whenWritable(peer), and
//   stats().queuedBytes shows what waits in this process.
// - close() hands queued frames to the kernel, then closes every link.
// - Bodies: a Uint8Array travels as bytes (no JSON), anything else as JSON.
// - Errors are NaplusError: EPEERLOST, ETIMEDOUT, EREMOTE, E2BIG, EINVAL; handshake and
//   protocol failures are logged (EAUTH, EPROTO reasons) on both ends and close the link.
export { Transport } from './transport.js';
export { PROTOCOL_VERSION } from './handshake.js';
export type { Message, MessageHandler, PagePayload, PeerAddress, PeerStats, Reply, TlsOptions, TransportOptions } from './types.js';
export type { CompressMode } from './compression.js';
