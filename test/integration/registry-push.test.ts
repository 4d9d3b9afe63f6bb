/**
 * The registry on the master and Corral's base image (issue 21, docs/registry.md), with real peers:
 * - Debian's docker-registry run by Corral's daemon code on loopback: hostile names refused before any
 *   request; the registry killed (SIGKILL) in the middle of a layer upload fails the push with
 *   REGISTRY_PUSH_FAILED, the supervisor starts it again, and the next push completes; one more push
 *   uploads nothing (every blob HEADs present) and yields the same manifest digest.
 * - a master in a namespace with `registry.enabled` and a registered tar image as `registry.baseImage`
 *   (a busybox tree; production's is the debian-12 OS image, same code): the master pushes
 *   corral/base:TAG at start (health says `pushed`), `corral registry push-base` then uploads nothing; a
 *   real dockerd in another namespace, with --insecure-registry, pulls MASTER:PORT/corral/base:TAG and
 *   `docker run`s a command from it; `docker save` of that image goes back through `corral registry push`
 *   under another name and is pulled and run again.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { failIfUnmet, unmetNeeds } from '../helpers/peers.js';
import { freePort } from '../helpers/ports.js';
import { TestNet, runIn, startNsMaster, stopNsLab, waitFor, type Host } from '../helpers/netns.js';
import { CLI, type MasterProcess } from '../helpers/master-process.js';
import { startDockerd, type TestDockerd } from '../helpers/registry-dockerd.js';
import { makeBusyboxTree } from '../../master/lab/demo-root.js';
import { RegistryDaemon } from '../../master/registry/daemon.js';
import { pushBaseImage } from '../../master/registry/base-image.js';
import { pushImage } from '../../master/registry/push.js';
import { fromDockerArchive, fromTree } from '../../master/registry/sources.js';
import { parseReference } from '../../master/registry/reference.js';
import { CorralError } from '../../master/util/errors.js';
import { createLogger } from '../../master/util/logger.js';

const unmet = unmetNeeds({
  root: true,
  commands: ['docker-registry', 'dockerd', 'docker', 'nsenter', 'busybox', 'tar'],
});
const logger = createLogger({ level: 'warn' });
const APPLETS = ['sh', 'echo', 'cat', 'uname'];

const code = (c: string) => (err: unknown) => err instanceof CorralError && err.code === c;

describe('registry: docker-registry supervised, pushes cut and repeated', { timeout: 60_000 }, () => {
  before(() => failIfUnmet(unmet));
  let dir: string;
  let daemon: RegistryDaemon;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'corral-reg-'));
    daemon = new RegistryDaemon(
      { bind: '127.0.0.1', port: await freePort(), dir: join(dir, 'registry') },
      'docker-registry',
      logger,
    );
    await daemon.start();
  });
  after(async () => {
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('names with path traversal or bad characters are refused before any request', async () => {
    const tree = join(dir, 'small');
    makeBusyboxTree(tree, { applets: APPLETS, rcS: '#!/bin/sh\n' });
    const image = await fromTree(tree, join(dir, 'cache'));
    for (const [repository, tag] of [
      ['../etc', 'x'],
      ['corral/../base', 'x'],
      ['Corral/Base', 'x'],
      ['corral/base', '../x'],
      ['corral/base', 'a/b'],
      ['corral/base', 'a b'],
      ['corral/base', `t${'x'.repeat(128)}`],
    ] as const) {
      await assert.rejects(
        pushImage({ registry: daemon.url, repository, tag, image, logger }),
        code('REGISTRY_NAME_INVALID'),
        `${repository}:${tag}`,
      );
    }
    assert.throws(() => parseReference('10.0.0.1:5000/x'), code('REGISTRY_NAME_INVALID'));
    // A docker save archive whose manifest points outside itself.
    const evil = join(dir, 'evil');
    mkdirSync(evil);
    writeFileSync(
      join(evil, 'manifest.json'),
      JSON.stringify([{ Config: '../../etc/passwd', Layers: ['x/layer.tar'] }]),
    );
    runTar(['-C', evil, '-cf', join(dir, 'evil.tar'), 'manifest.json']);
    await assert.rejects(
      fromDockerArchive(join(dir, 'evil.tar'), join(dir, 'cache')),
      code('REGISTRY_SOURCE_INVALID'),
    );
  });

  test('registry killed mid-upload: the push fails with a code, the next one completes, then one uploads nothing', async () => {
    const tree = join(dir, 'big');
    makeBusyboxTree(tree, { applets: APPLETS, rcS: '#!/bin/sh\n' });
    // Random bytes do not compress: a 24 MiB layer, so the upload is cut well before its end.
    writeFileSync(join(tree, 'noise'), randomBytes(24 << 20));
    const cacheDir = join(dir, 'cache');
    const pid = daemon.pid;
    assert.ok(pid);
    // The same push each time: of the tree, tag `cut`, through one layer cache.
    const push = (onProgress?: (digest: string, sent: number) => void) =>
      pushBaseImage({
        registry: daemon.url,
        tag: 'cut',
        tree,
        dataDir: dir,
        cacheDir,
        logger,
        ...(onProgress ? { onProgress } : {}),
      });
    let killedAt = -1;
    await assert.rejects(
      push((_digest, sent) => {
        if (killedAt < 0 && sent > 0) {
          killedAt = sent;
          process.kill(pid, 'SIGKILL');
        }
      }),
      code('REGISTRY_PUSH_FAILED'),
    );
    assert.ok(killedAt > 0 && killedAt < 24 << 20, `killed after ${killedAt} bytes`);
    await waitFor(
      'the supervisor to start the registry again',
      () => daemon.running && daemon.pid !== pid,
      15_000,
    );
    await waitFor(
      'the registry to serve again',
      async () => (await fetch(`${daemon.url}/v2/`).catch(() => undefined))?.status === 200,
      10_000,
    );
    const again = await push();
    assert.ok(
      again.blobs.some((b) => b.uploaded),
      'the layer cut in the middle is uploaded again',
    );
    const third = await push();
    assert.deepEqual(
      third.blobs.map((b) => b.uploaded),
      third.blobs.map(() => false),
      'nothing uploaded the third time',
    );
    assert.equal(third.manifestDigest, again.manifestDigest);
    // The registry serves the manifest under the tag, with the digest Corral computed.
    const res = await fetch(`${daemon.url}/v2/corral/base/manifests/cut`, {
      headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-content-digest'), again.manifestDigest);
    assert.equal(daemon.status().recoveries, 1);
  });
});

function runTar(args: string[]): void {
  assert.equal(spawnSync('tar', args).status, 0);
}

describe(
  'registry: a real dockerd pulls and runs the base image the master pushed',
  { timeout: 60_000 },
  () => {
    before(() => failIfUnmet(unmet));
    let net: TestNet;
    let dir: string;
    let srv: Host;
    let eng: Host;
    let master: MasterProcess | undefined;
    let dockerd: TestDockerd | undefined;
    const octet = 1 + Math.floor(Math.random() * 250);
    const MASTER = `10.${octet}.21.1`;
    const ENGINE = `10.${octet}.21.2`;
    const docker = (args: string[]) => dockerd!.docker(args);
    const corral = (args: string[]) => runIn(net, srv.ns, ['node', CLI, ...args], 30_000);

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'corral-regd-'));
      net = new TestNet('rg');
      srv = net.addHost('srv', `${MASTER}/24`);
      eng = net.addHost('eng', `${ENGINE}/24`);
      // The OS image the master turns into its base image: production's is debian-12 (corral image
      // build-debian); here a busybox tree, imported the same way (a registered tar image).
      const tree = join(dir, 'tree');
      makeBusyboxTree(tree, { applets: APPLETS, rcS: '#!/bin/sh\n' });
      // A kernel where the OS image has one: left out of the base layer (containers use their host's).
      mkdirSync(join(tree, 'boot'));
      writeFileSync(join(tree, 'boot/vmlinuz-6.1.0'), 'not a kernel');
      mkdirSync(join(tree, 'usr/lib/modules/6.1.0'), { recursive: true });
      writeFileSync(join(tree, 'usr/lib/modules/6.1.0/modules.dep'), '');
      runTar(['-C', tree, '-cf', join(dir, 'tree.tar'), '.']);
      const imported = spawnSync(
        'node',
        [
          CLI,
          'image',
          'import',
          join(dir, 'tree.tar'),
          '--name',
          'busybox-base',
          '--data-dir',
          join(dir, 'data'),
        ],
        { encoding: 'utf8' },
      );
      assert.equal(imported.status, 0, imported.stderr);
      master = await startNsMaster({
        net,
        srv,
        dir,
        address: MASTER,
        config: {
          // `corral registry` reads the registry's address from the master's config file, as in production.
          address: MASTER,
          nodeImage: { autoBuild: false, cacheDir: join(dir, 'cache') },
          dhcp: { mode: 'off' },
          tftp: { enabled: false },
          registry: { enabled: true, baseImage: 'busybox-base', baseTag: 'test' },
        },
        args: ['--http-port', '80'],
      });
      // A real dockerd in the engine's namespace, told the master's registry is plain HTTP.
      dockerd = await startDockerd(net, eng.ns, join(dir, 'd'), [`${MASTER}:5000`]);
    });

    after(async () => {
      await dockerd?.stop();
      await stopNsLab({ master, net, dir });
    });

    test('the master pushes its base image; push-base again uploads nothing; docker pull + run; docker save pushed back', async () => {
      type Health = {
        registry: { state: string; address: string; base: { state: string; digest?: string } };
      };
      const health = async (): Promise<Health['registry']> => {
        const h = await runIn(net, srv.ns, ['curl', '-sf', `http://${MASTER}/api/v1/health`], 10_000);
        return (JSON.parse(h.stdout) as Health).registry;
      };
      const reg = await waitFor(
        'the base image pushed at start',
        async () => {
          const r = await health();
          return r.base.state === 'pushing' ? undefined : r;
        },
        20_000,
        300,
      );
      assert.equal(reg.state, 'running');
      assert.equal(reg.address, `${MASTER}:5000`);
      assert.equal(reg.base.state, 'pushed', JSON.stringify(reg));

      // The command, from the same registered image: every blob is there already, same manifest.
      const pushed = await corral([
        'registry',
        'push-base',
        '--config',
        join(dir, 'corral.json'),
        '--data-dir',
        join(dir, 'data'),
        '--json',
      ]);
      assert.equal(pushed.code, 0, pushed.stderr);
      const result = JSON.parse(pushed.stdout) as { manifestDigest: string; blobs: { uploaded: boolean }[] };
      assert.deepEqual(
        result.blobs.map((b) => b.uploaded),
        [false, false],
      );
      assert.equal(result.manifestDigest, reg.base.digest);

      const ref = `${MASTER}:5000/corral/base:test`;
      const pull = await docker(['pull', ref]);
      assert.equal(pull.code, 0, pull.stderr);
      assert.match(pull.stdout, new RegExp(result.manifestDigest));
      const run = await docker([
        'run',
        '--rm',
        '--network',
        'none',
        ref,
        '/bin/sh',
        '-c',
        'echo "hello from $(uname -s) base"; [ -e /boot/vmlinuz-6.1.0 ] && echo kernel-in-layer; [ -e /usr/lib/modules/6.1.0/modules.dep ] && echo modules-in-layer; [ -d /boot ] && echo boot-dir',
      ]);
      assert.equal(run.code, 0, run.stderr);
      // The kernel and modules are left out; their (empty) directories stay.
      assert.equal(run.stdout.trim(), 'hello from Linux base\nboot-dir');
      // The config Corral wrote: `docker run IMAGE` with no command runs /bin/sh.
      const inspect = await docker(['image', 'inspect', '--format', '{{json .Config.Cmd}}', ref]);
      assert.equal(inspect.stdout.trim(), '["/bin/sh"]');

      // docker save → corral registry push (the operator's OCI tarball path) → pulled under the new name.
      const archive = join(dir, 'saved.tar');
      const save = await docker(['save', '-o', archive, ref]);
      assert.equal(save.code, 0, save.stderr);
      const again = await corral([
        'registry',
        'push',
        archive,
        '--config',
        join(dir, 'corral.json'),
        '--data-dir',
        join(dir, 'data'),
        '--as',
        'ops/saved:v1',
        '--json',
      ]);
      assert.equal(again.code, 0, again.stderr);
      const saved = `${MASTER}:5000/ops/saved:v1`;
      assert.equal((await docker(['pull', saved])).code, 0);
      const run2 = await docker(['run', '--rm', '--network', 'none', saved, '/bin/echo', 'saved ok']);
      assert.equal(run2.stdout.trim(), 'saved ok');
    });
  },
);
