// The engine for pages that only this node serves: the master copy is in this host's
// segment and no other node caches the page, so granting is a copy at most, and giving
// a page up is a write-back at most. (Pages other nodes share go through the coherence
// protocol instead.)
import { PageState, type Access, type PageEngine, type RegionService } from './region.js';

export class LocalEngine implements PageEngine {
  constructor(private readonly region: RegionService) {}

  request(page: number, access: Access): void {
    const r = this.region;
    let source: 'segment' | 'cache' = 'cache';
    if (r.state[page] === PageState.Invalid) {
      r.fillFromSegment(page);
      source = 'segment';
    }
    r.grant(page, access === 'write' ? PageState.Modified : PageState.Shared, source);
  }

  evict(page: number): void {
    this.writeBackIfDirty(page);
    this.region.drop(page);
  }

  async flush(): Promise<void> {
    for (let page = 0; page < this.region.pages; page++) this.writeBackIfDirty(page);
  }

  /** Write-protect first, so no app writes after the copy home has been taken. */
  private writeBackIfDirty(page: number): void {
    if (this.region.state[page] !== PageState.Modified) return;
    this.region.protect(page);
    this.region.writeBack(page);
  }
}
