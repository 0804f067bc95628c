// `naplus demo` — placeholder until the cross-node protocol is wired (see issue 5).
export async function demo(): Promise<void> {
  throw new Error('naplus demo needs the cross-node coherence protocol, which is not wired yet');
}
