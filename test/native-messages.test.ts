// The native helper's messages say what they mean: an address after "0x" is in hex.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from '../src/uffd/native.js';

test('an address outside any mapping is printed in hex', () => {
  assert.throws(() => native.copy(0x2a000, 0x1000, 16), (err: Error) => /range 0x2a000\+16 is not inside a live mapping/.test(err.message));
});

test.run();
