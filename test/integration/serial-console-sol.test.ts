/**
 * The serial console over IPMI serial-over-LAN with real peers: OpenIPMI's `ipmi_sim` is the BMC (LAN on
 * loopback, its SOL wired with `sol "tcp:..."` to a socat that runs `sh` on a pty, standing in for the
 * host's serial port), and the master runs the real `ipmitool -I lanplus ... sol activate` with the
 * node's sealed IPMI password. A browser-side WebSocket types a command and reads the answer; the typed
 * bytes went through ipmitool one by one (lines.ts says why).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { apiOk } from '../helpers/api.js';
import { Browser } from '../helpers/browser.js';
import { startMasterProcess, type MasterProcess } from '../helpers/master-process.js';
import { waitFor } from '../helpers/netns.js';
import { requirePeers } from '../helpers/peers.js';
import { freePort } from '../helpers/ports.js';

const PASSWORD = 'sol-test-admin';
const BMC_PASSWORD = 'bmc-sol-pw1';
const MAC = '52:54:00:50:1a:01';
let master: MasterProcess | undefined;
const peers: ChildProcess[] = [];
let dir = '';
let bmcPort = 0;

before(async () => {
  requirePeers('ipmi_sim', 'ipmitool', 'socat');
  dir = mkdtempSync(join(tmpdir(), 'corral-sol-'));
  bmcPort = await freePort();
  const serialPort = await freePort();
  peers.push(
    spawn(
      'socat',
      [`TCP-LISTEN:${serialPort},bind=127.0.0.1,reuseaddr,fork`, 'EXEC:sh -i,pty,setsid,ctty,stderr,sane'],
      {
        stdio: 'ignore',
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', PS1: 'host$ ', HOME: dir },
      },
    ),
  );
  writeFileSync(
    join(dir, 'lan.conf'),
    `name "corral-sol-bmc"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 ${bmcPort}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  sol "tcp:127.0.0.1:${serialPort}" 115200
  user 1 true "" "" user 10 none md2 md5 straight
  user 2 true "admin" "${BMC_PASSWORD}" admin 10 none md2 md5 straight
`,
  );
  writeFileSync(
    join(dir, 'emu.cmds'),
    'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n',
  );
  mkdirSync(join(dir, 'bmc-state'));
  peers.push(
    spawn(
      'ipmi_sim',
      ['-c', join(dir, 'lan.conf'), '-f', join(dir, 'emu.cmds'), '-s', join(dir, 'bmc-state'), '-n'],
      {
        stdio: 'ignore',
      },
    ),
  );
  const cfg = join(dir, 'corral.json');
  writeFileSync(
    cfg,
    JSON.stringify({
      dataDir: join(dir, 'data'),
      address: '127.0.0.1',
      http: { port: 0 },
      tftp: { enabled: false },
      console: { https: false, allowInsecureBasicAuth: true },
      // ipmi_sim lacks Get Channel Cipher Suites: name the suite (remote/config.ts).
      remote: { power: { cipherSuite: 3, pollSeconds: 0 } },
      // No node environment build (not what this file tests): a master stopped while the build asked
      // apt took over 10 s to exit on a loaded machine.
      nodeImage: { autoBuild: false },
    }),
  );
  // 30 s to start, not the helper's 15: beside another test file on a loaded machine, this master
  // printed nothing for 15 s (node loading the master's modules while scrypt ran next door).
  master = await startMasterProcess({
    args: ['--config', cfg],
    env: { CORRAL_ADMIN_PASSWORD: PASSWORD },
    timeoutMs: 30_000,
  });
  const r = await fetch(`${master.url}/api/v1/enlist`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ mac: MAC, inventory: { nics: [{ name: 'eth0', mac: MAC, link: 'up' }] } }),
  });
  assert.equal(r.status, 201);
  await apiOk({ url: master.url, password: PASSWORD }, 'PUT', `/nodes/${MAC}/power`, {
    driver: 'ipmi',
    address: '127.0.0.1',
    port: bmcPort,
    username: 'admin',
    password: BMC_PASSWORD,
  });
});

after(async () => {
  // The peers go even when the master's stop fails: left running, they keep this file's process alive
  // and the whole run waits on it.
  try {
    await master?.stop();
  } finally {
    for (const p of peers) if (p.exitCode === null) p.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('typing into a node console over ipmitool SOL to ipmi_sim gets the answer; the session is recorded', async () => {
  const b = new Browser(master!.url);
  assert.equal((await b.login('admin', PASSWORD)).status, 303);
  const csrf = await b.csrfToken();
  const url = new URL(`/nodes/${MAC}/console/ws`, master!.url.replace(/^http/, 'ws'));
  url.searchParams.set('csrf', csrf);
  const ws = new WebSocket(url, {
    headers: { cookie: `corral_session=${b.cookies.get('corral_session') ?? ''}`, origin: master!.url },
  });
  let output = '';
  const controls: Record<string, unknown>[] = [];
  ws.on('message', (data, binary) => {
    if (binary) output += (data as Buffer).toString('utf8');
    else controls.push(JSON.parse((data as Buffer).toString('utf8')) as Record<string, unknown>);
  });
  try {
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const hello = await waitFor('hello', () => controls.find((c) => c['type'] === 'hello'), 15_000, 50);
    assert.equal(hello['source'], `sol 127.0.0.1:${bmcPort}`);
    // ipmitool needs a moment to bring the SOL payload up; the answer proves both directions.
    const t0 = Date.now();
    await waitFor(
      'the answer over SOL',
      () => {
        if (/\r\n42\r\n/.test(output)) return true;
        ws.send(Buffer.from('echo $((6*7))\r'), { binary: true });
        return undefined;
      },
      30_000,
      3000,
    ).catch(() =>
      assert.fail(`no answer over SOL; output:\n${output}\ncontrols: ${JSON.stringify(controls)}`),
    );
    console.log(`# SOL round trip via ipmi_sim: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    ws.close();
  }
  await waitFor(
    'the recording',
    async () => /sol 127\.0\.0\.1/.test(await (await b.get(`/nodes/${MAC}/console`)).text()) || undefined,
    5000,
    250,
  );
});
