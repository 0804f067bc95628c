// A page protocol made of two halves on each node: its cache (this node's copies of the
// region's pages) and its home (the pages homed on this node). A message goes to one half
// or the other by its op; what the node asks of the protocol is the cache's business.
// (Release consistency is built on this; sequential/index.ts has the same shape.)
import type { Access, Completion, Msg, Op, PageProtocol } from './protocol.js';

export interface CacheHalf extends PageProtocol {
  receive(from: number, msg: Msg): void;
  release(done: Completion): void;
}

export interface HomeHalf {
  receive(from: number, msg: Msg): void;
}

export abstract class CacheAndHome<C extends CacheHalf, H extends HomeHalf> {
  constructor(
    readonly cache: C,
    readonly home: H,
    /** Whether a message of this op is for a page's home. */
    private readonly forHome: (op: Op) => boolean,
  ) {}

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
    if (this.forHome(msg.op)) this.home.receive(from, msg);
    else this.cache.receive(from, msg);
  }

  release(done: Completion): void {
    this.cache.release(done);
  }
}
