/**
 * Apps (issue 21), fifth session: the docker arguments that pause, resume and release a rollout, the
 * test that tells a manager that cannot serve a command from docker refusing it, the engine image
 * variant's package list and cache key, and the console's pause/resume forms.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AppSpecSchema } from '../../master/apps/app-spec.js';
import { holdArgs, releaseArgs } from '../../master/apps/docker-args.js';
import { managerUnusable } from '../../master/apps/service.js';
import { installPath } from '../../master/util/paths.js';
import { createRenderer } from '../../web-ui/render.js';
import {
  OS_IMAGE_PACKAGES,
  isOsImageVariant,
  osImageCacheKey,
  osImagePackages,
} from '../../node-images/os-image.js';

const spec = AppSpecSchema.parse({
  name: 'web',
  command: ['httpd', '-f'],
  update: { delaySeconds: 4, failureAction: 'rollback' },
});

test('pause holds with a one-year batch delay, and the engine does not roll back while held', () => {
  assert.deepEqual(holdArgs(spec, 'pause'), [
    'service', 'update', '--detach', '--update-delay', '8760h', '--update-failure-action', 'pause',
    '--label-add', 'corral.held=true', '--label-add', 'corral.paused=true', 'web',
  ]); // prettier-ignore
  assert.deepEqual(holdArgs(spec, 'resume'), [
    'service', 'update', '--detach', '--update-delay', '4s', '--update-failure-action', 'pause',
    '--label-add', 'corral.held=true', '--label-rm', 'corral.paused', 'web',
  ]); // prettier-ignore
  assert.deepEqual(releaseArgs(spec), [
    'service', 'update', '--detach', '--update-delay', '4s', '--update-failure-action', 'rollback',
    '--label-rm', 'corral.held', '--label-rm', 'corral.paused', 'web',
  ]); // prettier-ignore
  // A declared `continue` or `pause` is the engine's own either way.
  const cont = AppSpecSchema.parse({ ...spec, update: { failureAction: 'continue' } });
  assert.equal(holdArgs(cont, 'pause')[6], 'continue');
});

test('a manager that cannot serve is told from docker refusing the command', () => {
  const exited = (stderr: string): { error: string; stderr: string } => ({
    error: `docker service inspect exited 1: ${stderr}`,
    stderr,
  });
  assert.equal(
    managerUnusable({ error: 'unreachable: connect ECONNREFUSED 10.0.0.11:22', stderr: '' }),
    true,
  );
  assert.equal(managerUnusable({ error: 'timeout: command timed out', stderr: '' }), true);
  assert.equal(
    managerUnusable(
      exited(
        'Error response from daemon: rpc error: code = Unknown desc = The swarm does not have a leader.',
      ),
    ),
    true,
  );
  assert.equal(
    managerUnusable(
      exited(
        'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?',
      ),
    ),
    true,
  );
  assert.equal(
    managerUnusable(exited('Error response from daemon: This node is not a swarm manager.')),
    true,
  );
  assert.equal(managerUnusable(exited('Error: no such service: web')), false);
  assert.equal(
    managerUnusable(exited('Error response from daemon: rpc error: code = InvalidArgument desc = x')),
    false,
  );
});

test('the engine image variant adds docker.io; the default image keeps its packages and cache key', () => {
  assert.deepEqual(osImagePackages('default'), [...OS_IMAGE_PACKAGES]);
  assert.ok(!osImagePackages('default').includes('docker.io'));
  assert.deepEqual(osImagePackages('engine'), [...OS_IMAGE_PACKAGES, 'docker.io', 'apparmor']);
  assert.equal(isOsImageVariant('engine'), true);
  assert.equal(isOsImageVariant('toString'), false);
  const inputs = {
    suite: 'bookworm',
    mirror: 'http://deb.debian.org/debian',
    reportSha256: 'a'.repeat(64),
    unitSha256: 'b'.repeat(64),
  };
  // Golden: the key these inputs had before variants existed (FORMAT 4), so a cached default image is reused.
  assert.equal(osImageCacheKey({ ...inputs, variant: 'default' }), '3744798cb0cb72d3');
  assert.notEqual(osImageCacheKey({ ...inputs, variant: 'engine' }), '3744798cb0cb72d3');
});

test('the app page offers pause during a rollout and resume while paused', () => {
  const renderer = createRenderer({
    viewsDir: installPath('web-ui', 'views'),
    now: () => Date.parse('2026-12-07T02:00:00Z'),
  });
  const page = (paused: boolean): string =>
    renderer.render('app', {
      app: {
        name: 'web',
        spec,
        version: 2,
        engineVersion: 2,
        update: { state: 'updating', message: 'update in progress' },
        paused,
        instances: [],
        lbService: null,
        error: null,
      },
      command: 'httpd -f',
      rollout: '<svg class="rollout"></svg>',
      logs: [],
      logError: null,
      canAdmin: true,
    });
  assert.match(page(false), /action="\/apps\/web\/pause"/);
  assert.doesNotMatch(page(false), /paused by the operator/);
  assert.match(page(true), /action="\/apps\/web\/resume"/);
  assert.match(page(true), /Rollout: updating \(paused by the operator\)/);
});
