// The cross-host suite (disjoint writes and cross reads, contended Atomics, false
// sharing, a node killed) with every node and app in a real QEMU guest: two simulated
// hosts, each an ivshmem device two guests share, nodes linked over the guests' bridge.
// Under TCG a fault costs milliseconds and a guest can lose the CPU for seconds on a
// busy machine, so the region is smaller (128 pages) and the suite's time windows and
// link timeouts 10 times longer (a node is declared lost after 10 s, not 1 s).
import { test } from 'uvu';
import { crossHostSuite } from '../helpers/cross-host-suite.js';
import { makeGuestCluster } from './helpers/guest-cluster.js';

crossHostSuite('guests', () => ({}), makeGuestCluster, { regionBytes: 512 * 1024, timeScale: 10 });

test.run();
