/**
 * The registry's pure parts (master/registry): reference grammar, the image config and manifest the push
 * sends (their digests are what a pull by digest names), and the rendered config.yml.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { assemble, imageConfig, MEDIA, type Layer } from '../../master/registry/image.js';
import { checkRepository, checkTag, parseReference } from '../../master/registry/reference.js';
import { renderRegistryConfig } from '../../master/registry/daemon.js';
import { CorralError } from '../../master/util/errors.js';

const invalid = (err: unknown): boolean => err instanceof CorralError && err.code === 'REGISTRY_NAME_INVALID';

test('repository names and tags follow the distribution grammar', () => {
  for (const ok of ['corral/base', 'a', 'a.b/c__d/e---f', 'ops/my_app'])
    assert.equal(checkRepository(ok), ok);
  for (const bad of [
    '',
    '../x',
    'a/../b',
    'a//b',
    '/a',
    'a/',
    'A',
    'a b',
    'a%2f..',
    '-a',
    'a_',
    'x'.repeat(256),
  ]) {
    assert.throws(() => checkRepository(bad), invalid, bad);
  }
  for (const ok of ['debian-12', 'v1.2.3', '_x', 'A'.repeat(128)]) assert.equal(checkTag(ok), ok);
  for (const bad of ['', '.x', '-x', 'a/b', '../b', 'a:b', 'A'.repeat(129)])
    assert.throws(() => checkTag(bad), invalid, bad);
  assert.deepEqual(parseReference('corral/base:debian-12'), { repository: 'corral/base', tag: 'debian-12' });
  assert.throws(() => parseReference('10.0.0.1:5000/corral/base:x'), invalid);
  assert.deepEqual(parseReference('10.0.0.1:5000/corral/base:x', { dropHost: true }), {
    repository: 'corral/base',
    tag: 'x',
  });
  assert.deepEqual(parseReference('localhost/a:b', { dropHost: true }), { repository: 'a', tag: 'b' });
  assert.throws(() => parseReference('corral/base'), invalid);
});

test('config and manifest: content-addressed, no time stamp, layers in order', () => {
  const layer = (n: number): Layer => ({
    digest: `sha256:${String(n).repeat(64)}`,
    diffId: `sha256:${String(n + 1).repeat(64)}`,
    size: 1000 + n,
    path: `/x/${n}`,
    mediaType: MEDIA.layer,
  });
  const a = assemble([layer(1), layer(3)]);
  const config = JSON.parse(a.config.bytes.toString()) as Record<string, unknown>;
  assert.deepEqual(config['rootfs'], { type: 'layers', diff_ids: [layer(1).diffId, layer(3).diffId] });
  assert.equal(config['created'], undefined);
  assert.deepEqual((config['config'] as { Cmd: string[] }).Cmd, ['/bin/sh']);
  const manifest = JSON.parse(a.manifest.toString()) as {
    mediaType: string;
    config: { digest: string; size: number };
    layers: { digest: string; size: number; mediaType: string }[];
  };
  assert.equal(manifest.mediaType, MEDIA.manifest);
  assert.equal(manifest.config.digest, `sha256:${createHash('sha256').update(a.config.bytes).digest('hex')}`);
  assert.equal(manifest.config.size, a.config.bytes.length);
  assert.deepEqual(
    manifest.layers.map((l) => [l.digest, l.size, l.mediaType]),
    [
      [layer(1).digest, 1001, MEDIA.layer],
      [layer(3).digest, 1003, MEDIA.layer],
    ],
  );
  assert.equal(a.manifestDigest, `sha256:${createHash('sha256').update(a.manifest).digest('hex')}`);
  // Same inputs, same bytes: a re-push finds everything present.
  assert.equal(assemble([layer(1), layer(3)]).manifestDigest, a.manifestDigest);
  assert.notEqual(imageConfig([layer(1).diffId]).toString(), imageConfig([layer(3).diffId]).toString());
  // A `docker save` config is kept byte for byte.
  const saved = Buffer.from('{"rootfs":{"type":"layers","diff_ids":[]},"created":"2020-01-01T00:00:00Z"}');
  assert.equal(assemble([layer(1)], saved).config.bytes, saved);
});

test('config.yml: storage under the data dir, listening on the provisioning address, quoted', () => {
  const text = renderRegistryConfig(
    { bind: '10.0.0.1', port: 5000, dir: '/var/lib/corral/registry' },
    'c0ffee',
  );
  assert.match(text, /^ {4}rootdirectory: "\/var\/lib\/corral\/registry\/storage"$/m);
  assert.match(text, /^ {2}addr: "10\.0\.0\.1:5000"$/m);
  assert.match(text, /^ {2}secret: "c0ffee"$/m);
  // A path with YAML's special characters stays one string.
  assert.match(
    renderRegistryConfig({ bind: '0.0.0.0', port: 1, dir: '/a: #b' }, 's'),
    /rootdirectory: "\/a: #b\/storage"/,
  );
});
