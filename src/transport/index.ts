// Naplus transport: authenticated, LZ4-compressed TCP links between the nodes of a cluster,
// carrying sessions that survive broken connections.
//
//   const t = await Transport.start({ cluster, nodeId, listen: { host, port }, peers, secret });
//   t.port                                   bound port (listen port 0 picks one)
//   t.onMessage((peer, msg, reply?) => …)    one handler; `reply` is present for requests
//   t.send(peer, msg): void                  fire and forget, FIFO per peer, exactly once
//   t.request(peer, msg, timeoutMs?): Promise<Message>
//   t.on('peer-up', (peer: number) => …)     a new session with peer
//   t.on('peer-down', (peer: number, reason: NaplusError, byPeer: boolean, gone: boolean) => …)   that session is lost
//   t.isUp(peer): boolean                    a session with peer is alive
//   t.dropSession(peer, reason): boolean     end the session on purpose (both ends see it lost)
//   t.waitForPeers(ids, timeoutMs): Promise<void>
//   t.whenWritable(peer): Promise<void>      backpressure for bulk senders
//   t.stats(): Record<peer, PeerStats>
//   await t.close()
//
// Guarantees and choices the coherence layer may rely on (README "Transport between nodes"):
// - A session joins two node processes (incarnations: a random id each process draws at
//   start). It outlives TCP connections: the lower id dials the higher and redials at once
//   when a connection breaks (then backing off: 50 ms doubling to heartbeatMs while a
//   session waits, to 3 s otherwise); the higher id probes the lower one's listening port. With ephemeral ports, start nodes highest id
//   first: only a higher-id peer's configured address is dialed.
// - Within a session every message, request and reply is handled by the peer exactly once
//   and in the order sent (FIFO per peer), however many connections it takes: frames carry
//   sequence numbers, the receiver acknowledges cumulatively after its handler has run, the
//   sender keeps what is unacknowledged (at most `replayBufferBytes`) and sends it again on
//   the next connection. All messages produced in one tick go out in one write.
// - While a session lives, isUp(peer) is true even with no connection: send() queues and
//   never throws EPEERLOST, request() waits (its own timeout still applies, ETIMEDOUT), and
//   whenWritable() waits for a connection.
// - 'peer-up' fires when a new session starts (never when one resumes). 'peer-down' fires
//   once per session, when it is lost; isUp turns false then, send() throws EPEERLOST and
//   request() rejects with it, every request pending in the session rejects with EPEERLOST
//   naming the peer and the reason, and the session never comes back (the next connection
//   starts a new one). Messages of a lost session that the peer had not acknowledged may or
//   may not have been handled. 'peer-down' fires before this end closes the session's
//   connection, so a peer that sees the close may rely on this node having acted already.
// - A session is lost (byPeer true: nothing of it survives at the peer) when the peer's
//   process is gone (its listening port refuses a connection), when it restarted (a new
//   incarnation answers), when the peer gave the session up and said so (its dropSession,
//   its timeout, its overflow, its close()), or no longer holds it. It is lost (byPeer
//   false: the peer may still run, holding its state) when nothing came from the peer for
//   peerTimeoutMs of this process's running time, connected or not; when the replay
//   buffer overflows; when the peer breaks the protocol; on this end's dropSession() and
//   close(). dropSession() fires 'peer-down' before it returns; an overflow inside send()
//   throws EPEERLOST there and fires 'peer-down' on the next tick.
// - Page data is snapshotted (copied or compressed) inside send/request/reply; received
//   page data and binary bodies are views of the received bytes, owned by the receiver.
// - A message's pages travel in one section: all-zero pages as markers, the rest as one
//   LZ4 block, or raw when LZ4 does not shrink them. compress 'auto' (default) spends
//   LZ4 only while the link is backlogged, since on a fast link compressing a 4 KiB page
//   (11-18 µs here) costs more than sending it raw; 'always' and 'never' force it
//   (compression.ts). A message carries at most `maxFrameBytes` of page bytes
//   (pages × pageSize) and of frame; more throws E2BIG.
// - Backpressure: send() never blocks; a bulk sender awaits whenWritable(peer) (connected,
//   the socket has room, at most half the replay buffer unacknowledged), and
//   stats().queuedBytes / unackedBytes show what waits in this process.
// - close() hands queued frames to the kernel, then ends every session (the peers are told).
// - Bodies: a Uint8Array travels as bytes (no JSON), anything else as JSON.
// - Errors are NaplusError: EPEERLOST, ETIMEDOUT, EREMOTE, E2BIG, EINVAL; handshake and
//   protocol failures are logged (EAUTH, EPROTO reasons), refused connections at a bounded
//   rate (reject-log.ts).
export { Transport } from './transport.js';
export { PROTOCOL_VERSION } from './handshake.js';
export type { Message, MessageHandler, PagePayload, PeerAddress, PeerStats, Reply, TlsOptions, TransportOptions } from './types.js';
export type { CompressMode } from './compression.js';
