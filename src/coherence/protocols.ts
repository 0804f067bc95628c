// The page protocols a region may run, by the name the cluster file gives. To add one:
// implement RegionProtocol (protocol.ts) in a folder of its own and list it here; the
// node, the transport and the simulation need no change.
import type { ProtocolContext, RegionProtocol } from './protocol.js';
import { SequentialProtocol } from './sequential/index.js';
import { ReleaseProtocol } from './release/index.js';

export const PROTOCOLS = {
  sequential: (context: ProtocolContext): RegionProtocol => new SequentialProtocol(context),
  release: (context: ProtocolContext): RegionProtocol => new ReleaseProtocol(context),
} as const;

export type ProtocolName = keyof typeof PROTOCOLS;
