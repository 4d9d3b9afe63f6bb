import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kernelCmdline } from '../../node-images/index.js';
import { isCorralError } from '../../master/util/errors.js';

test('kernelCmdline renders the parameters /init reads, serial console last', () => {
  assert.equal(
    kernelCmdline({ mode: 'discover', serverUrl: 'http://10.0.0.1:8080/', mac: '52-54-00-AB-CD-EF' }),
    'console=tty0 console=ttyS0,115200n8 panic=30 corral.mode=discover corral.server=http://10.0.0.1:8080 ' +
      'corral.mac=52:54:00:ab:cd:ef',
  );
  assert.equal(
    kernelCmdline({ mode: 'install', serverUrl: 'http://master', extra: ['corral.ip=10.0.0.9/24', 'quiet'] }),
    'console=tty0 console=ttyS0,115200n8 panic=30 corral.mode=install corral.server=http://master ' +
      'corral.ip=10.0.0.9/24 quiet',
  );
});

test('kernelCmdline refuses what the node could not use', () => {
  const code = (fn: () => unknown): string | undefined => {
    try {
      fn();
    } catch (err) {
      return isCorralError(err) ? err.code : 'not a CorralError';
    }
    return undefined;
  };
  assert.equal(
    code(() => kernelCmdline({ mode: 'dance', serverUrl: 'http://x' })),
    'INTERNAL',
  );
  assert.equal(
    code(() => kernelCmdline({ mode: 'discover', serverUrl: 'https://x' })),
    'CONFIG_INVALID',
  );
  assert.equal(
    code(() => kernelCmdline({ mode: 'discover', serverUrl: 'not a url' })),
    'CONFIG_INVALID',
  );
  assert.equal(
    code(() => kernelCmdline({ mode: 'discover', serverUrl: 'http://x/?a=b' })),
    'CONFIG_INVALID',
  );
  assert.equal(
    code(() => kernelCmdline({ mode: 'discover', serverUrl: 'http://x', mac: '52:54' })),
    'MAC_INVALID',
  );
  assert.equal(
    code(() => kernelCmdline({ mode: 'discover', serverUrl: 'http://x', extra: ['a b'] })),
    'INTERNAL',
  );
});
