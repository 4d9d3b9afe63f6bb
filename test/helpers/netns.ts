/**
 * The lab's namespace toolkit under the names the tests use, and the set-up the namespace tests share
 * (issue 18 dedup): a command run in a namespace, a link-local (IPv6) wait, a busybox udhcpc lease, a
 * `corral master` started in a namespace with its config file and log, and Corral's DHCPv6 test server.
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LabNet, waitFor, type Host } from '../../master/lab/net.js';
import { forwardLoopbackToUnix } from '../../master/lab/forward.js';
import { CLI, startMasterProcess, type MasterProcess } from '../../master/lab/master-process.js';

export { LabNet as TestNet, run, hasCommand, runId, waitFor, type Host } from '../../master/lab/net.js';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command in a namespace asynchronously (other children's pipes keep draining); kills it after `timeoutMs`. */
export function runIn(net: LabNet, ns: string, argv: string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = net.spawnIn(ns, argv);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Waits until `ifname` in `ns` has a link-local address past duplicate address detection: DHCPv6
 * clients, relays and servers send from it (RFC 8415 §13.1), and a tentative one cannot be bound.
 */
export async function linkLocalReady(net: LabNet, ns: string, ifname: string): Promise<void> {
  await waitFor(
    `link-local address on ${ns}/${ifname}`,
    () => {
      const out = net.nsExec(ns, ['ip', '-6', 'addr', 'show', 'dev', ifname, 'scope', 'link']);
      return out.includes('fe80') && !out.includes('tentative') ? true : undefined;
    },
    10_000,
  );
}

/** Adds an IPv6 address to a host's link (no DAD: the test owns the link) and waits for its link-local. */
export async function addIpv6(net: LabNet, host: Host, cidr: string): Promise<void> {
  net.nsExec(host.ns, ['ip', '-6', 'addr', 'add', cidr, 'dev', host.ifname, 'nodad']);
  await linkLocalReady(net, host.ns, host.ifname);
}

/** `KEY=value` lines (a udhcpc script's `env` dump) as a record. */
export function readEnv(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) env[line.slice(0, i)] = line.slice(i + 1);
  }
  return env;
}

/** A udhcpc run script that dumps its environment on `bound` (ip, siaddr, boot_file, serverid, ...). */
export function udhcpcScript(dir: string, name: string): { script: string; out: string } {
  const out = join(dir, `${name}.env`);
  const script = join(dir, `${name}.sh`);
  writeFileSync(script, `#!/bin/sh\n[ "$1" = bound ] && env > '${out}'\nexit 0\n`);
  chmodSync(script, 0o755);
  return { script, out };
}

/** One DHCP exchange by busybox udhcpc on `host` (4 discovers 1 s apart); the lease's variables, or a failed assertion. */
export async function udhcpcLease(
  net: LabNet,
  host: Host,
  dir: string,
  name: string,
  extra: string[] = [],
): Promise<Record<string, string>> {
  const { script, out } = udhcpcScript(dir, name);
  rmSync(out, { force: true });
  const r = await runIn(
    net,
    host.ns,
    ['udhcpc', '-f', '-q', '-n', '-t', '4', '-T', '1', '-i', host.ifname, '-s', script, ...extra],
    20_000,
  );
  if (r.code !== 0 || !existsSync(out))
    throw new Error(`udhcpc got no lease (exit ${r.code}): ${r.stdout}${r.stderr}`);
  return readEnv(out);
}

export interface NsMasterOptions {
  net: LabNet;
  /** The master's host: it runs in this namespace, on this link (`--interface`). */
  srv: Host;
  /** Scratch directory: corral.json, data/ and master.log go here. */
  dir: string;
  /** `--address`: the master's IPv4 address. */
  address: string;
  /** The config file's contents. */
  config: Record<string, unknown>;
  /** More flags (--dhcp-range, --http-port, ...). */
  args?: string[];
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** `corral master` in the server's namespace, configured from `config` plus flags, logging to DIR/master.log. */
export function startNsMaster(o: NsMasterOptions): Promise<MasterProcess> {
  writeFileSync(join(o.dir, 'corral.json'), JSON.stringify(o.config));
  return startMasterProcess({
    args: [
      '--config',
      join(o.dir, 'corral.json'),
      '--data-dir',
      join(o.dir, 'data'),
      '--address',
      o.address,
      '--interface',
      o.srv.ifname,
      ...(o.args ?? []),
    ],
    netns: o.srv.ns,
    host: o.address,
    ...(o.env ? { env: o.env } : {}),
    timeoutMs: o.timeoutMs ?? 45_000,
    logFile: join(o.dir, 'master.log'),
  });
}

export interface RelayedMaster {
  master: MasterProcess;
  /** The loopback listener that forwards to the console relay socket (close it at teardown). */
  relay: Server;
  /** The console and API as the test process reaches them: http://127.0.0.1:PORT. */
  url: string;
}

/**
 * `corral master` in `ns` on ADDRESS:8088 (no TFTP) with the config file at `configPath`, and its console on
 * the test's loopback: `corral _forward` in the namespace relays DIR/console.sock to the master, and a
 * loopback listener forwards to that socket (the load-balancing and apps labs).
 */
export async function startRelayedMaster(o: {
  net: LabNet;
  ns: string;
  address: string;
  /** Scratch directory: master.log and console.sock go here. */
  dir: string;
  dataDir: string;
  configPath: string;
  password: string;
}): Promise<RelayedMaster> {
  const master = await startMasterProcess({
    netns: o.ns,
    args: [
      ...['--data-dir', o.dataDir, '--address', o.address, '--http-port', '8088'],
      ...['--tftp-port', '0', '--config', o.configPath],
    ],
    env: { CORRAL_ADMIN_PASSWORD: o.password, CORRAL_LOG_LEVEL: 'info' },
    logFile: join(o.dir, 'master.log'),
    timeoutMs: 30_000,
  });
  const sock = join(o.dir, 'console.sock');
  o.net.spawnIn(o.ns, ['node', CLI, '_forward', sock, o.address, '8088'], { stdio: 'ignore' });
  await waitFor('the console relay socket', () => existsSync(sock) && statSync(sock).isSocket(), 10_000);
  const fwd = await forwardLoopbackToUnix(0, sock);
  return { master, relay: fwd.server, url: `http://127.0.0.1:${fwd.port}` };
}

/** Tears down what startNsMaster's tests set up: the master (TERM, then KILL), the namespaces, the directory. */
export async function stopNsLab(lab: { master?: MasterProcess; net?: LabNet; dir?: string }): Promise<void> {
  await lab.master?.stop('SIGTERM', 10_000).catch(() => lab.master?.stop('SIGKILL'));
  await lab.net?.destroy();
  if (lab.dir) rmSync(lab.dir, { recursive: true, force: true });
}

export interface Dhcp6Serve {
  child: ChildProcess;
  out(): string;
  err(): string;
}

const DHCP6_SERVE = fileURLToPath(new URL('./dhcp6-serve.js', import.meta.url));

/** Corral's DHCPv6 server (test/helpers/dhcp6-serve.ts) in `ns`, once it printed READY; `args` are its flags. */
export async function startDhcp6Serve(net: LabNet, ns: string, args: string[]): Promise<Dhcp6Serve> {
  const child = net.spawnIn(ns, [process.execPath, DHCP6_SERVE, ...args]);
  let out = '';
  let err = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  await waitFor('dhcp6-serve READY', () => (out.includes('READY') ? true : undefined), 20_000).catch(
    (e: Error) => {
      throw new Error(`${e.message}: ${err.slice(-2000)}`);
    },
  );
  return { child, out: () => out, err: () => err };
}
