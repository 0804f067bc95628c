// The cross-host suite again, with each simulated host in its own network namespace:
// its nodes reach the other host's over a veth link through a bridge, rate-shaped with
// `tc tbf` (1 Gbit/s), so pages cross a real network path. Skipped, with the reason,
// where namespaces cannot be made.
import { test } from 'uvu';
import { makeHostNetwork, namespacesUnavailable, type HostNetwork } from '../src/netns.js';
import { crossHostSuite } from './helpers/cross-host-suite.js';

const why = namespacesUnavailable();
if (why) {
  console.log(`SKIP: the cross-host suite in network namespaces: ${why}`);
  test.skip(`network namespaces: ${why}`, () => undefined);
} else {
  let network: HostNetwork | undefined;
  test.before(() => {
    network = makeHostNetwork(`nx${process.pid % 10000}`, 2, { rate: '1gbit' });
  });
  test.after(() => network?.destroy());
  crossHostSuite('namespaces, 1 Gbit/s', () => ({ network }));
}

test.run();
