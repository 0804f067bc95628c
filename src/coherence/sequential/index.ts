// Sequential consistency: single writer / multiple readers per page (MSI), with each
// page's directory entry at its home. A node holds a page Invalid, Shared (mapped
// read-only in its apps) or Modified (writable); the home grants only once every copy
// that conflicts has been given up, so every load returns the latest store, in one
// global order, and Atomics work across nodes.
//
// This node's side of it in two parts: the cache (cache.ts: this node's state of every
// page and its answers to homes) and the home (home.ts: the directory of the pages
// homed here and the serialisation of their transactions).
import { Op, type Access, type Completion, type Msg, type ProtocolContext, type ProtocolCounters, type RegionProtocol } from '../protocol.js';
import { CacheController } from './cache.js';
import { HomeDirectory } from './home.js';

/** Messages a page's home handles; the others go to caches. */
function isHomeOp(op: Op): boolean {
  return op === Op.GetS || op === Op.GetM || op === Op.PutS || op === Op.PutM || op === Op.Ack || op === Op.Clean || op === Op.Held || op === Op.Reported || op === Op.Fence;
}

export class SequentialProtocol implements RegionProtocol {
  readonly cache: CacheController;
  readonly home: HomeDirectory;

  constructor(c: ProtocolContext) {
    this.cache = new CacheController(c.region, c.pages, c.topology, c.wire, c.memory, c.clock, { holdMs: c.holdMs, graceMs: c.graceMs }, c.losses, c.log);
    this.home = new HomeDirectory(c.region, c.pages, c.topology, c.wire, c.master, c.directory, c.clock, c.quarantineMs, c.graceMs, c.log);
  }

  permits(page: number, access: Access): boolean {
    return this.cache.permits(page, access);
  }

  request(page: number, access: Access): void {
    this.cache.request(page, access);
  }

  evict(page: number): boolean {
    return this.cache.evict(page);
  }

  receive(from: number, msg: Msg): void {
    if (isHomeOp(msg.op)) this.home.receive(from, msg);
    else this.cache.receive(from, msg);
  }

  release(done: Completion): void {
    this.cache.release(done);
  }

  peerDown(peer: number, gone: boolean): void {
    this.home.peerDown(peer, gone);
    this.cache.peerDown(peer, gone);
  }

  peerUp(peer: number): void {
    this.home.peerUp(peer);
    this.cache.peerUp(peer);
  }

  stop(): number {
    const flushed = this.cache.flush();
    this.home.recall();
    return flushed;
  }

  get openTransactions(): number {
    return this.home.busyPages;
  }

  get onIdle(): (() => void) | undefined {
    return this.home.onIdle;
  }

  set onIdle(fn: (() => void) | undefined) {
    this.home.onIdle = fn;
  }

  get counters(): ProtocolCounters {
    const { held, lostPages: lostHeld, failedPages, cleaned } = this.cache.counters;
    const { grants, recalls, lostPages: lostOwned } = this.home.counters;
    return { grants, recalls, held, lostPages: lostHeld + lostOwned, failedPages, cleaned, busyPages: this.home.busyPages };
  }
}
