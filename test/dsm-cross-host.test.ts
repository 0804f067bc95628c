// Two simulated hosts x two nodes on loopback TCP: the cluster is one memory.
import { test } from 'uvu';
import { crossHostSuite } from './helpers/cross-host-suite.js';

crossHostSuite('loopback', () => ({}));

test.run();
