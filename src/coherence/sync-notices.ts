// What locks and barriers carry for the page protocols: the write notices of every region
// that needs them (release consistency), keyed by region index, each region's notices in
// base64 (the sync layer's messages are JSON). A node whose regions need none carries
// nothing, and its synchronizations cost what they did.
import { NaplusError } from '../errors.js';
import type { NoticeExchange } from './protocol.js';

/** Per region index: that region's write notices, base64. */
export type Notices = Record<string, string>;

/** See NoticeExchange: the same four steps, for every region of a node at once. */
export interface SyncNotices {
  outgoing(home: number): Notices | undefined;
  absorb(from: number, notices: Notices): void;
  incoming(to: number): Notices | undefined;
  acquire(notices: Notices): void;
  lockLost(reason: string): void;
}

export class NoticeRelay implements SyncNotices {
  constructor(
    /** Per region index: its protocol's exchange, if it has one. */
    private readonly regions: ReadonlyArray<NoticeExchange | undefined>,
  ) {}

  /** A relay for these regions, or undefined if none needs notices. */
  static over(regions: ReadonlyArray<NoticeExchange | undefined>): NoticeRelay | undefined {
    return regions.some((r) => r !== undefined) ? new NoticeRelay(regions) : undefined;
  }

  private collect(take: (exchange: NoticeExchange) => Uint8Array | undefined): Notices | undefined {
    let out: Notices | undefined;
    this.regions.forEach((exchange, region) => {
      const bytes = exchange && take(exchange);
      if (bytes) (out ??= {})[region] = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64');
    });
    return out;
  }

  /** Each region's notices in `notices`, checked: throws EPROTO naming what is wrong. */
  private each(notices: Notices, apply: (exchange: NoticeExchange, bytes: Uint8Array) => void): void {
    for (const [key, value] of Object.entries(notices)) {
      const exchange = /^\d+$/.test(key) ? this.regions[Number(key)] : undefined;
      if (!exchange || typeof value !== 'string') throw new NaplusError('EPROTO', `sent write notices for region #${key}, which takes none`);
      apply(exchange, Buffer.from(value, 'base64'));
    }
  }

  outgoing(home: number): Notices | undefined {
    return this.collect((e) => e.outgoing(home));
  }

  absorb(from: number, notices: Notices): void {
    this.each(notices, (e, bytes) => e.absorb(from, bytes));
  }

  incoming(to: number): Notices | undefined {
    return this.collect((e) => e.incoming(to));
  }

  acquire(notices: Notices): void {
    this.each(notices, (e, bytes) => e.acquire(bytes));
  }

  lockLost(reason: string): void {
    for (const e of this.regions) e?.lockLost(reason);
  }
}
