// Homes of a static placement ('block', 'interleave'): every node computes the same
// home and slot for every page from the cluster file, so nothing is ever asked.
import type { Homes } from './protocol.js';

export class StaticHomes implements Homes {
  constructor(
    private readonly home: ArrayLike<number>,
    private readonly slot: ArrayLike<number>,
  ) {}

  homeOf(page: number): number {
    return this.home[page]!;
  }

  slotOf(page: number): number {
    return this.slot[page]!;
  }

  resolve(_page: number, then: () => void): void {
    then();
  }

  learn(): void {
    // Nothing to learn: the placement says it all.
  }
}
