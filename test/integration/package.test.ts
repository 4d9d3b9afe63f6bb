/**
 * The Debian package end to end, as far as a machine whose PID 1 is not systemd allows (issue 22):
 * `npm run package` builds it and lintian passes; it installs with apt into a throwaway Debian bookworm
 * root (debootstrap, cached under /var/cache/corral/pkgtest), with node from a package of this host's
 * nodejs (dpkg-repack); `systemd-analyze verify` passes on the installed unit inside that root; the
 * installed `corral master` runs exactly as the unit's ExecStart says, with the root's /etc/corral, in a
 * network namespace of its own; a node enlisted through the API survives an upgrade from an older
 * release (the newest commit whose migrations differ, packaged the same way), whose first start keeps
 * the database as a restore point before migrating; `apt remove` keeps the data, `dpkg --purge` leaves
 * nothing.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  copyFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { MIGRATIONS } from '../../master/store/migrations.js';
import { installPath } from '../../master/util/paths.js';
import { exitOf } from '../helpers/master-process.js';
import { runId } from '../helpers/netns.js';

const REPO = installPath();
const CACHE = '/var/cache/corral/pkgtest';
const MIRROR = 'http://deb.debian.org/debian';
/** The environment systemd gives a service (no Environment= in the unit). */
const SERVICE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function sh(cmd: string, args: string[], timeoutSec = 120, env: NodeJS.ProcessEnv = process.env): string {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      timeout: timeoutSec * 1000,
      maxBuffer: 64 << 20,
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

const APT_ENV = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };

function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The test's own peers, installed when missing (package.sh installs dpkg-dev and lintian itself). */
function ensureTools(): void {
  const missing = [
    ['debootstrap', 'debootstrap'],
    ['dpkg-repack', 'dpkg-repack'],
    ['curl', 'curl'],
  ].filter(([cmd]) => !hasCommand(cmd!));
  if (missing.length)
    sh(
      'apt-get',
      ['install', '-y', '-qq', '--no-install-recommends', ...missing.map(([, p]) => p!)],
      300,
      APT_ENV,
    );
}

/**
 * A bookworm root with systemd (a server's init, and the home of systemd-analyze), cached as a tar:
 * debootstrap took 34 s here and apt 13 s more, each run extracts it in a few seconds.
 */
function freshRoot(): string {
  const tar = join(CACHE, 'bookworm-minbase-systemd.tar');
  if (!existsSync(tar)) {
    const build = mkdtempSync('/var/tmp/corral-pkgtest-base-');
    try {
      sh('debootstrap', ['--variant=minbase', 'bookworm', build, MIRROR], 900);
      sh('chroot', [build, 'apt-get', 'update', '-qq'], 300, APT_ENV);
      sh(
        'chroot',
        [build, 'apt-get', 'install', '-y', '-qq', '--no-install-recommends', 'systemd'],
        600,
        APT_ENV,
      );
      sh('chroot', [build, 'apt-get', 'clean']);
      sh('tar', ['-C', build, '-cf', `${tar}.tmp`, '.'], 300);
      renameSync(`${tar}.tmp`, tar);
    } finally {
      rmSync(build, { recursive: true, force: true });
      rmSync(`${tar}.tmp`, { force: true });
    }
  }
  const root = mkdtempSync('/var/tmp/corral-pkgtest-root-');
  sh('tar', ['-C', root, '-xf', tar], 300);
  sh('chroot', [root, 'apt-get', 'update', '-qq'], 300, APT_ENV);
  return root;
}

/**
 * This host's nodejs as a package: Corral depends on nodejs within one major (its native module's
 * ABI), which bookworm's own nodejs (18) is not, and the root must get the node the package was built
 * for. dpkg-repack rebuilds the installed package (minutes of xz: cached per version).
 */
function nodejsDeb(): string {
  const version = sh('dpkg-query', ['-W', '-f=${Version}', 'nodejs']).trim();
  const deb = join(
    CACHE,
    `nodejs_${version.replace(/^\d+:/, '')}_${sh('dpkg', ['--print-architecture']).trim()}.deb`,
  );
  if (!existsSync(deb)) {
    const dir = mkdtempSync(join(CACHE, 'repack-'));
    try {
      sh('sh', ['-c', `cd "${dir}" && dpkg-repack nodejs`], 1200);
      const built = readdirSync(dir).find((f) => f.endsWith('.deb'));
      assert.ok(built, 'dpkg-repack made no .deb');
      renameSync(join(dir, built), deb);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return deb;
}

function migrationVersions(source: string): number[] {
  return [...source.matchAll(/^\s*version: (\d+),/gm)].map((m) => Number(m[1])).sort((a, b) => a - b);
}

/** The newest commit whose migrations are a strict subset of this checkout's: the "older release". */
function olderRelease(): { commit: string; missing: number[] } {
  const current = MIGRATIONS.map((m) => m.version);
  const commits = sh('git', ['-C', REPO, 'log', '--format=%H', '--', 'master/store/migrations.ts'])
    .trim()
    .split('\n');
  for (const c of commits) {
    let text: string;
    try {
      text = sh('git', ['-C', REPO, 'show', `${c}^:master/store/migrations.ts`]);
    } catch {
      continue;
    }
    const versions = migrationVersions(text);
    const missing = current.filter((v) => !versions.includes(v));
    if (missing.length && versions.every((v) => current.includes(v))) return { commit: `${c}^`, missing };
  }
  throw new Error('no commit in the history has fewer migrations than this checkout');
}

function buildPackage(args: string[], out: string): string {
  sh('bash', [join(REPO, 'scripts/package.sh'), '--no-build', '--out', out, ...args], 900);
  const deb = readdirSync(out).find((f) => f.endsWith('.deb'));
  assert.ok(deb, `package.sh made no .deb in ${out}`);
  return join(out, deb);
}

/**
 * The older release's package: its source (git archive), built with this checkout's node_modules and
 * packaged with this checkout's packaging files. Cached by commit and packaging files.
 */
function olderPackage(commit: string, version: string): string {
  const hash = createHash('sha256')
    .update(sh('git', ['-C', REPO, 'rev-parse', commit]))
    .update(version)
    .update(readFileSync(join(REPO, 'scripts/package.sh')));
  for (const f of readdirSync(join(REPO, 'packaging'), { recursive: true, encoding: 'utf8' }).sort()) {
    const path = join(REPO, 'packaging', f);
    if (lstatSync(path).isFile()) hash.update(f).update(readFileSync(path));
  }
  const key = hash.digest('hex').slice(0, 16);
  const dir = join(CACHE, `older-${key}`);
  const existing = existsSync(dir) ? readdirSync(dir).find((f) => f.endsWith('.deb')) : undefined;
  if (existing) return join(dir, existing);
  const src = mkdtempSync('/var/tmp/corral-pkgtest-src-');
  try {
    sh('sh', ['-c', `git -C "${REPO}" archive "${commit}" | tar -x -C "${src}"`], 120);
    symlinkSync(realpathSync(join(REPO, 'node_modules')), join(src, 'node_modules'));
    // Its own tests may not type-check against today's helpers; tsc still emits, and cli.js is checked.
    try {
      sh('node', [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', join(src, 'tsconfig.json')], 600);
    } catch {
      /* emitted anyway */
    }
    assert.ok(existsSync(join(src, 'dist/master/cli.js')), `the older release ${commit} did not build`);
    // One older package is kept: those of earlier packaging files are of no further use.
    for (const f of readdirSync(CACHE))
      if (f.startsWith('older-')) rmSync(join(CACHE, f), { recursive: true, force: true });
    const tmpOut = `${dir}.tmp`;
    rmSync(tmpOut, { recursive: true, force: true });
    buildPackage(['--source', src, '--version', version, '--no-lintian'], tmpOut);
    renameSync(tmpOut, dir);
  } finally {
    rmSync(src, { recursive: true, force: true });
  }
  return join(
    dir,
    readdirSync(dir).find((f) => f.endsWith('.deb'))!,
  );
}

/** ExecStart= of the installed unit, as argv (Corral's has no quoting or specifiers; refuse if it gains some). */
function execStartOf(unitFile: string): string[] {
  const lines = readFileSync(unitFile, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('ExecStart='));
  assert.equal(lines.length, 1, 'one ExecStart= line');
  const value = lines[0]!.slice('ExecStart='.length).trim();
  assert.doesNotMatch(value, /["'%\\$]|^[-@:+!]/, 'ExecStart is plain words');
  return value.split(/\s+/);
}

interface Running {
  child: ChildProcess;
  out: () => string;
}

/**
 * Runs `argv` in the root as the unit would: the service's PATH and nothing else of this environment,
 * inside the test's namespace, with /proc mounted in a mount namespace of its own (gone when it exits).
 */
function runInRoot(root: string, ns: string, argv: string[]): Running {
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      'unshare',
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      'mount -t proc proc "$0/proc" && p="$1" && shift && exec chroot "$0" env -i PATH="$p" "$@"',
      root,
      SERVICE_PATH,
      ...argv,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const collect = (d: Buffer): void => {
    out = (out + d.toString()).slice(-(1 << 20));
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  return { child, out: () => out };
}

function curl(ns: string, args: string[]): string {
  return sh('ip', ['netns', 'exec', ns, 'curl', '-sS', '--fail-with-body', '--max-time', '10', ...args], 20);
}

async function waitHealthy(
  ns: string,
  m: Running,
): Promise<{ status: string; version: string; schemaVersion: number }> {
  const deadline = Date.now() + 90_000;
  for (let i = 0; Date.now() < deadline && i < 200; i++) {
    if (m.child.exitCode !== null)
      throw new Error(`the installed master exited (${m.child.exitCode}):\n${m.out()}`);
    try {
      return JSON.parse(curl(ns, ['http://127.0.0.1/api/v1/health'])) as {
        status: string;
        version: string;
        schemaVersion: number;
      };
    } catch {
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  throw new Error(`no answer from /api/v1/health within 90 s:\n${m.out()}`);
}

async function stop(m: Running): Promise<number | string> {
  if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGTERM');
  return exitOf(m.child, 30_000);
}

/** Whether a path exists, links included (an absolute link into the root dangles when seen from outside). */
function present(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Mounts under the root left in this mount namespace (none expected: each run had its own). */
function mountsUnder(root: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p === root || p.startsWith(`${root}/`));
}

test(
  'the Debian package: build, lintian, install, run as the unit does, upgrade keeping nodes, purge',
  { timeout: 40 * 60_000 },
  async (t) => {
    const started = Date.now();
    const step = (what: string): void =>
      t.diagnostic(`${Math.round((Date.now() - started) / 1000)} s: ${what}`);
    mkdirSync(CACHE, { recursive: true });
    ensureTools();
    const ns = `corral-pkg-${runId()}`;
    const work = mkdtempSync('/var/tmp/corral-pkgtest-');
    let root: string | undefined;
    let master: Running | undefined;
    try {
      const pkgVersion = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string })
        .version;
      const newVersion = `${pkgVersion}+test2`;
      const older = olderRelease();
      const olderVersion = `${pkgVersion}~test1`;
      sh('dpkg', ['--compare-versions', olderVersion, 'lt', newVersion]);

      // The package of this checkout, with lintian (package.sh fails on its errors and warnings).
      const newDeb = buildPackage(['--version', newVersion], join(work, 'new'));
      step(`built ${newDeb} (lintian passed)`);
      const oldDeb = olderPackage(older.commit, olderVersion);
      step(`older release ${older.commit} (without migrations ${older.missing.join(', ')}): ${oldDeb}`);
      const nodeDeb = nodejsDeb();

      root = freshRoot();
      step(`root ${root}`);
      for (const f of [nodeDeb, oldDeb, newDeb]) copyFileSync(f, join(root, 'tmp', f.split('/').pop()!));
      const inRoot = (f: string): string => `/tmp/${f.split('/').pop()!}`;
      const apt = (args: string[]): string =>
        sh('chroot', [root!, 'apt-get', '-y', '-qq', '--no-install-recommends', ...args], 600, APT_ENV);

      // Install the older release; apt resolves its Depends from Debian's mirror.
      apt(['install', inRoot(nodeDeb), inRoot(oldDeb)]);
      assert.match(sh('chroot', [root, 'dpkg-query', '-W', '-f=${Version}', 'corral']), /~test1$/);
      step('older release installed');

      // The operator's one edit: the master's address (loopback of the test's namespace).
      const confPath = join(root, 'etc/corral/corral.json');
      const conf = JSON.parse(readFileSync(confPath, 'utf8')) as Record<string, unknown>;
      assert.equal(conf['dataDir'], '/var/lib/corral');
      writeFileSync(confPath, `${JSON.stringify({ ...conf, address: '127.0.0.1' }, null, 2)}\n`);

      sh('ip', ['netns', 'add', ns]);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);

      master = runInRoot(root, ns, execStartOf(join(root, 'lib/systemd/system/corral.service')));
      const h1 = await waitHealthy(ns, master);
      assert.equal(h1.status, 'ok');
      assert.equal(h1.version, olderVersion);
      step(`older master healthy (schema ${h1.schemaVersion})`);
      const mac = '52:54:00:7e:57:01';
      const enlisted = curl(ns, [
        '-X',
        'POST',
        '-H',
        'content-type: application/json',
        '--data',
        JSON.stringify({ mac, inventory: { cpu: { count: 2 }, memoryBytes: 2 ** 31, firmware: 'bios' } }),
        'http://127.0.0.1/api/v1/enlist',
      ]);
      assert.ok(enlisted.length > 0);
      const password = readFileSync(join(root, 'var/lib/corral/initial-admin-password'), 'utf8').trim();
      const nodes = (): { mac: string; state: string }[] =>
        (
          JSON.parse(curl(ns, ['-u', `admin:${password}`, 'http://127.0.0.1/api/v1/nodes'])) as {
            nodes: { mac: string; state: string }[];
          }
        ).nodes;
      assert.deepEqual(
        nodes().map((n) => n.mac),
        [mac],
      );
      assert.equal(await stop(master), 0);
      master = undefined;

      // Upgrade. The edited conffile is kept (the packaged one did not change, so dpkg asks nothing).
      apt(['install', inRoot(newDeb)]);
      assert.equal(sh('chroot', [root, 'dpkg-query', '-W', '-f=${Version}', 'corral']), newVersion);
      assert.equal((JSON.parse(readFileSync(confPath, 'utf8')) as { address: string }).address, '127.0.0.1');
      step('upgraded');

      // The installed unit, verified where it is installed (its ExecStart exists there, so does systemd):
      // exit 0 and not one warning (an unknown or misspelt directive is only a warning).
      const verify = sh('unshare', [
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        'mount -t proc proc "$0/proc" && exec chroot "$0" systemd-analyze verify --man=no /lib/systemd/system/corral.service 2>&1',
        root,
      ]);
      assert.equal(verify.trim(), '', 'systemd-analyze verify printed nothing');
      step('systemd-analyze verify passed');

      master = runInRoot(root, ns, execStartOf(join(root, 'lib/systemd/system/corral.service')));
      const h2 = await waitHealthy(ns, master);
      assert.equal(h2.version, newVersion);
      assert.ok(h2.schemaVersion >= h1.schemaVersion, `schema ${h1.schemaVersion} → ${h2.schemaVersion}`);
      assert.deepEqual(
        nodes().map((n) => n.mac),
        [mac],
        'the node survived the upgrade',
      );
      const points = (
        JSON.parse(curl(ns, ['-u', `admin:${password}`, 'http://127.0.0.1/api/v1/snapshots'])) as {
          snapshots: { name: string; kind: string; migrations: number[] }[];
        }
      ).snapshots;
      const lacking = [...older.missing].sort((x, y) => x - y);
      const before = points.find((p) => p.name === `before-migration-${lacking.join('-')}`);
      assert.ok(before, `a pre-migration restore point, got ${JSON.stringify(points.map((p) => p.name))}`);
      assert.equal(before.kind, 'auto');
      assert.deepEqual(
        before.migrations.filter((v) => lacking.includes(v)),
        [],
        'the restore point holds the database before those migrations',
      );
      assert.equal(await stop(master), 0);
      master = undefined;
      step('newer master healthy, node kept, restore point present');

      // As an operator's `systemctl enable` would (offline: --root), so purge has a link to clean up.
      sh('systemctl', [`--root=${root}`, 'enable', 'corral.service']);
      assert.ok(present(join(root, 'etc/systemd/system/multi-user.target.wants/corral.service')));

      // remove keeps data and config; purge leaves nothing.
      apt(['remove', 'corral']);
      assert.ok(existsSync(join(root, 'var/lib/corral/corral.db')), 'remove keeps the database');
      assert.ok(existsSync(confPath), 'remove keeps the config');
      assert.ok(!existsSync(join(root, 'usr/lib/corral')), 'remove deletes the program');
      sh('chroot', [root, 'dpkg', '--purge', 'corral']);
      for (const p of [
        'usr/lib/corral',
        'usr/bin/corral',
        'etc/corral',
        'var/lib/corral',
        'var/cache/corral',
        'lib/systemd/system/corral.service',
        'etc/systemd/system/multi-user.target.wants/corral.service',
        'usr/share/doc/corral',
        'var/lib/dpkg/info/corral.list',
      ])
        assert.equal(present(join(root, p)), false, `${p} is left after purge`);
      // dpkg forgets a purged package altogether.
      assert.match(
        sh('chroot', [root, 'sh', '-c', 'dpkg-query -W corral 2>&1 || true']),
        /no packages found matching corral/,
      );
      step('removed and purged');
    } finally {
      if (master) await stop(master).catch(() => master?.child.kill('SIGKILL'));
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        /* not created */
      }
      if (root) {
        for (const m of mountsUnder(root).reverse()) execFileSync('umount', ['-l', m], { stdio: 'ignore' });
        assert.deepEqual(mountsUnder(root), []);
        rmSync(root, { recursive: true, force: true });
      }
      rmSync(work, { recursive: true, force: true });
    }
  },
);
