/**
 * Registry figures (issue 21, docs/registry.md): Corral's push of the real Debian base image over the
 * registry HTTP API from Node, a pull of it by a real dockerd, and, in the same run, `docker push` of the
 * same root file system (the OS image's whole tar, kernel included, `docker import`ed) by that dockerd to a
 * second, empty registry. Corral's layer leaves the kernel and modules out (docs/registry.md).
 *
 *   node dist/test/bench/registry-bench.js [--image /var/cache/corral/os-images/<key>/rootfs.tar.zst]
 *
 * Namespaces: R holds two docker-registry instances (5000 for Corral, 5001 for docker push; each empty,
 * so neither push finds the other's blobs), E holds dockerd. Corral's push runs as the CLI in R
 * (`corral registry push-base`), from a scratch data directory where the tar.zst is imported as
 * debian-12. Figures are wall-clock times. Prints; asserts nothing.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { renderRegistryConfig } from '../../master/registry/daemon.js';
import { CLI } from '../helpers/master-process.js';
import { TestNet, runIn, waitFor } from '../helpers/netns.js';
import { startDockerd, type TestDockerd } from '../helpers/registry-dockerd.js';

function newestOsImage(): string {
  const root = '/var/cache/corral/os-images';
  const found = readdirSync(root)
    .map((d) => join(root, d, 'rootfs.tar.zst'))
    .filter((f) => statSync(f, { throwIfNoEntry: false }))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (!found[0]) throw new Error(`no rootfs.tar.zst under ${root}: run corral node-image os-image`);
  return found[0];
}

const { values } = parseArgs({ options: { image: { type: 'string' } } });
const image = values.image ?? newestOsImage();
const dir = mkdtempSync(join(tmpdir(), 'corral-regb-'));
const net = new TestNet('rb');
const r = net.addHost('reg', '10.213.7.1/24');
const e = net.addHost('eng', '10.213.7.2/24');
let dockerd: TestDockerd | undefined;

async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  const out = await fn();
  console.log(`${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return out;
}

function must(res: { code: number | null; stderr: string; stdout: string }, what: string): string {
  if (res.code !== 0) throw new Error(`${what} failed: ${res.stderr.slice(-500)}`);
  return res.stdout;
}

try {
  console.log(`image ${image}: ${(statSync(image).size / 2 ** 20).toFixed(0)} MiB tar.zst`);
  for (const port of [5000, 5001]) {
    const rd = join(dir, `registry-${port}`);
    mkdirSync(join(rd, 'storage'), { recursive: true });
    writeFileSync(
      join(rd, 'config.yml'),
      renderRegistryConfig({ bind: r.address, port, dir: rd }, `bench${port}`),
    );
    net.spawnIn(r.ns, ['docker-registry', 'serve', join(rd, 'config.yml')], { stdio: 'ignore' });
  }
  const data = join(dir, 'data');
  must(
    await runIn(
      net,
      r.ns,
      ['node', CLI, 'image', 'import', image, '--name', 'debian-12', '--data-dir', data],
      300_000,
    ),
    'image import',
  );
  const config = join(dir, 'corral.json');
  writeFileSync(
    config,
    JSON.stringify({ address: r.address, dataDir: data, nodeImage: { cacheDir: join(dir, 'cache') } }),
  );
  dockerd = await startDockerd(net, e.ns, join(dir, 'd'), [`${r.address}:5000`, `${r.address}:5001`]);
  await waitFor(
    'both registries',
    async () => {
      const a = await runIn(net, r.ns, ['curl', '-sf', `http://${r.address}:5000/v2/`], 2000);
      const b = await runIn(net, r.ns, ['curl', '-sf', `http://${r.address}:5001/v2/`], 2000);
      return a.code === 0 && b.code === 0;
    },
    15_000,
  );

  const push = (): Promise<string> =>
    runIn(net, r.ns, ['node', CLI, 'registry', 'push-base', '--config', config, '--json'], 900_000).then(
      (x) => must(x, 'corral registry push-base'),
    );
  const first = JSON.parse(await timed('corral push-base, first (gzip of the layer + upload)', push)) as {
    ms: number;
    blobs: { size: number; uploaded: boolean }[];
  };
  console.log(
    `  of which upload (HTTP API): ${(first.ms / 1000).toFixed(1)} s; layer ${(first.blobs[0]!.size / 2 ** 20).toFixed(0)} MiB gzip`,
  );
  await timed('corral push-base, again (cached layer, every blob present)', push);
  const ref = `${r.address}:5000/corral/base:debian-12`;
  await timed('docker pull of corral/base:debian-12', async () =>
    must(await dockerd!.docker(['pull', ref], 900_000), 'docker pull'),
  );
  const run = must(
    await dockerd.docker(['run', '--rm', '--network', 'none', ref, 'cat', '/etc/debian_version'], 600_000),
    'docker run',
  );
  console.log(`  docker run … cat /etc/debian_version: ${run.trim()}`);

  // The reference: the same tree through the engine's own path.
  const plain = join(dir, 'rootfs.tar');
  if (spawnSync('sh', ['-c', `zstd -dc '${image}' > '${plain}'`]).status !== 0)
    throw new Error('zstd -dc failed');
  const dref = `${r.address}:5001/bench/docker:debian-12`;
  must(await dockerd.docker(['import', plain, dref], 900_000), 'docker import');
  await timed('docker push of the same tar (docker import, then push to an empty registry)', async () =>
    must(await dockerd!.docker(['push', dref], 900_000), 'docker push'),
  );
} finally {
  await dockerd?.stop();
  await net.destroy();
  rmSync(dir, { recursive: true, force: true });
}
