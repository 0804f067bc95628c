// The native userfaultfd helper: mechanisms only. Policy (what to map, when, from where)
// lives in src/coherence and src/node.
export { PAGE_SIZE, Mapping, Memfd, reserveSpace } from './memory.js';
export { Userfaultfd, PERMISSION_REMEDY, type UffdEvent, type UffdEventKind, type RegisterModes, type Watch, type UffdVia } from './userfaultfd.js';
export { UnixChannel, UnixServer, MAX_MESSAGE, type Credentials, type ChannelHandlers, type ListenOptions } from './channel.js';
export { PeerProcess, type ProcessMapping } from './process.js';
export { decodeEvents } from './events.js';
