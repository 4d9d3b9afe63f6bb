/**
 * The console side of remote control, against real peers on loopback: `ipmi_sim` (its chassis control
 * program keeps the "power" in a file) driven by the real `ipmitool`, and a real `sshd` on a free loopback
 * port. Checks the node page's power panel (no secret shown back, operator-only buttons, CSRF on every
 * post), a power action through the form, and the admin-only Run command page with its recorded output.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { failIfUnmet, unmetNeeds } from '../helpers/peers.js';
import { freePort } from '../helpers/ports.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { createConsoleRouter } from '../../web-ui/console.js';
import { requireBasicAuth } from '../../master/api/auth.js';
import { apiErrorHandler } from '../../master/api/errors.js';
import { createRemoteApiRouter } from '../../master/remote/api.js';
import { Authenticator } from '../../master/auth/users.js';
import { hashPassword } from '../../master/auth/passwords.js';
import { buildConfig } from '../../master/config.js';
import { openRepos, type Repos } from '../../master/store/repos.js';
import { silentLogger } from '../../master/util/logger.js';
import { createPowerControl } from '../../master/remote/power.js';
import { SecretBox } from '../../master/remote/secrets.js';
import { ensureMasterKey } from '../../master/deploy/ssh.js';
import { createDeployer } from '../../master/deploy/deployer.js';
import { Browser, hiddenValue } from '../helpers/browser.js';
import { waitFor } from '../helpers/netns.js';
import { remotePages } from '../../master/remote/feature.js';
import { deployPages } from '../../master/deploy/feature.js';

const unmet = unmetNeeds({ commands: ['ipmi_sim', 'ipmitool', '/usr/sbin/sshd'] });

const ADMIN_PW = 'power console admin pw';
const OPER_PW = 'power console operator pw';
const VIEWER_PW = 'power console viewer pw';
const BMC_PW = 'Loopback-Bmc-Pw1';
const MAC = '52:54:00:aa:00:01';

let dir = '';
let repos: Repos | undefined;
let server: Server | undefined;
let base = '';
let powerControl: ReturnType<typeof createPowerControl> | undefined;
const children: ChildProcess[] = [];

before(async () => {
  failIfUnmet(unmet);
  dir = mkdtempSync(join(tmpdir(), 'corral-pwc-'));
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  const bmcPort = await freePort();
  const sshPort = await freePort();

  const chassis = join(dir, 'chassis.sh');
  writeFileSync(
    chassis,
    `#!/bin/sh
op=$2; shift 2
if [ "$op" = get ]; then for p in "$@"; do [ "$p" = power ] && echo "power:$(cat ${dir}/power 2>/dev/null || echo 0)"; [ "$p" = boot ] && echo boot:default; done; exit 0; fi
echo "set $*" >> ${dir}/chassis.log
while [ $# -ge 2 ]; do [ "$1" = power ] && echo "$2" > ${dir}/power; shift 2; done
`,
  );
  chmodSync(chassis, 0o755);
  writeFileSync(
    join(dir, 'lan.conf'),
    `name "corral-console-bmc"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 ${bmcPort}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid b123456789abcdefa123456789abcdef
  endlan
  chassis_control "${chassis} 0x20"
  user 2 true "admin" "${BMC_PW}" admin 10 none md2 md5 straight
`,
  );
  writeFileSync(
    join(dir, 'emu.cmds'),
    'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n',
  );
  mkdirSync(join(dir, 'bmc-state'));
  children.push(
    spawn(
      'ipmi_sim',
      ['-c', join(dir, 'lan.conf'), '-f', join(dir, 'emu.cmds'), '-s', join(dir, 'bmc-state'), '-n'],
      { stdio: 'ignore' },
    ),
  );

  const key = await ensureMasterKey(dataDir);
  writeFileSync(join(dir, 'authorized_keys'), `${key.publicKey}\n`, { mode: 0o600 });
  assert.equal(
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'hostkey')]).status,
    0,
  );
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  writeFileSync(
    join(dir, 'sshd.conf'),
    [
      `Port ${sshPort}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'hostkey')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
    ].join('\n') + '\n',
  );
  children.push(spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd.conf')], { stdio: 'ignore' }));

  const logger = silentLogger();
  repos = openRepos({ path: join(dataDir, 'corral.db'), logger });
  const r = repos;
  const [adminHash, operHash, viewerHash] = await Promise.all([
    hashPassword(ADMIN_PW),
    hashPassword(OPER_PW),
    hashPassword(VIEWER_PW),
  ]);
  r.store.write((j) => {
    r.users.upsertIn(j, 'admin', adminHash, 'admin');
    r.users.upsertIn(j, 'oper', operHash, 'operator');
    r.users.upsertIn(j, 'vic', viewerHash, 'viewer');
    r.nodes.insertIn(j, {
      mac: MAC,
      name: 'box-1',
      seqNo: 1,
      state: 'deployed',
      ip: '127.0.0.1',
      inventory: { disks: [{ name: 'vda', sizeBytes: 8 * 2 ** 30 }] },
    });
    // The deploy form needs a registered image; its file is never read (no installer runs here).
    r.images.insertIn(j, {
      sha256: 'ef'.repeat(32),
      name: 'tiny',
      format: 'tar.gz',
      sizeBytes: 1000,
      osName: 'debian',
      osVersion: '12',
      minDiskBytes: 2 ** 20,
      file: `${'ef'.repeat(32)}.tar.gz`,
    });
  });
  const config = buildConfig(
    {
      dataDir,
      address: '127.0.0.1',
      remote: {
        exec: { port: sshPort, connectTimeoutSeconds: 5 },
        power: { pollSeconds: 0, cipherSuite: 3 },
      },
    },
    {},
  );
  const power = createPowerControl({ repos: r, config, logger, secrets: SecretBox.forDataDir(dataDir) });
  powerControl = power;
  power.configure(
    r.nodes.get(MAC)!,
    { driver: 'ipmi', address: '127.0.0.1', port: bmcPort, username: 'admin', password: BMC_PW },
    'test',
  );
  const authenticator = new Authenticator(r);
  const app = express();
  // The API's power routes, composed as createApiRouter does (JSON body, Basic auth, roles, JSON errors).
  app.use(
    '/api/v1',
    express.json(),
    requireBasicAuth(authenticator),
    createRemoteApiRouter({ repos: r, config, power, privateKeyPath: key.privateKeyPath }),
    apiErrorHandler(logger),
  );
  // The real deployer with this power control: a deploy from the console reboots through the BMC.
  const deployer = createDeployer({ repos: r, config, logger, key, power });
  app.use(
    createConsoleRouter({
      repos: r,
      config,
      logger,
      authenticator,
      power,
      deployer,
      pages: [remotePages(power, key.privateKeyPath), deployPages(deployer)],
    }),
  );
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  repos?.store.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test(
  'node page power panel: state and settings without the secret; power on through the form; CSRF enforced',
  { timeout: 60_000 },
  async () => {
    const admin = new Browser(base);
    assert.equal((await admin.login('admin', ADMIN_PW)).status, 303);
    const page = await (await admin.get('/nodes/box-1')).text();
    assert.match(page, /<h2 id="h-power">Power<\/h2>/);
    assert.match(page, /stored \(encrypted; never shown\)/);
    assert.ok(!page.includes(BMC_PW), 'the BMC password is shown back');
    assert.match(page, /action="\/nodes\/52:54:00:aa:00:01\/power\/on"/);

    const csrf = hiddenValue(page, '_csrf');
    const forged = await admin.post(`/nodes/${MAC}/power/on`, {});
    assert.equal(forged.status, 403, 'no CSRF token, no action');

    // ipmi_sim may need a moment to bind.
    await waitFor(
      'the BMC',
      async () => {
        const res = await admin.post(`/nodes/${MAC}/power/on`, { _csrf: csrf });
        return /ok=/.test(res.headers.get('location') ?? '') ? res : undefined;
      },
      20_000,
      500,
    );
    assert.equal(readFileSync(join(dir, 'power'), 'utf8').trim(), '1', 'the BMC was told to power on');
    const after = await (await admin.get('/nodes/box-1')).text();
    assert.match(after, /power <strong class="power-on">on<\/strong>/);

    // Off and cycle cut a running node's power: "I confirm" is checked on the server; on stays one click.
    const powerFile = (): string => readFileSync(join(dir, 'power'), 'utf8').trim();
    const form = (html: string, action: string): string =>
      new RegExp(`<form[^>]*action="/nodes/${MAC}/power/${action}"[\\s\\S]*?</form>`).exec(html)?.[0] ?? '';
    assert.match(form(after, 'off'), /name="confirm" value="yes" required/);
    assert.match(form(after, 'cycle'), /name="confirm" value="yes" required/);
    assert.doesNotMatch(form(after, 'on'), /name="confirm"/);
    const unconfirmed = await admin.post(`/nodes/${MAC}/power/off`, { _csrf: csrf });
    assert.equal(unconfirmed.status, 303);
    assert.match(
      decodeURIComponent(unconfirmed.headers.get('location') ?? ''),
      /Tick "I confirm" to power off box-1/,
    );
    assert.equal(powerFile(), '1', 'not powered off without the confirmation');
    const noCycle = await admin.post(`/nodes/${MAC}/power/cycle`, { _csrf: csrf, confirm: 'no' });
    assert.match(
      decodeURIComponent(noCycle.headers.get('location') ?? ''),
      /Tick "I confirm" to power-cycle/,
    );
    assert.equal(readFileSync(join(dir, 'chassis.log'), 'utf8').includes('set power 0'), false);
    const off = await admin.post(`/nodes/${MAC}/power/off`, { _csrf: csrf, confirm: 'yes' });
    assert.match(off.headers.get('location') ?? '', /ok=/);
    assert.equal(powerFile(), '0', 'confirmed: the BMC was told to power off');
    const on = await admin.post(`/nodes/${MAC}/power/on`, { _csrf: csrf });
    assert.match(on.headers.get('location') ?? '', /ok=/);
    assert.equal(powerFile(), '1');

    const oper = new Browser(base);
    await oper.login('oper', OPER_PW);
    const operPage = await (await oper.get('/nodes/box-1')).text();
    assert.match(operPage, /power\/off/, 'operators get the buttons');
    assert.ok(!operPage.includes('Power settings'), 'only admins change the settings');
    const denied = await oper.post(`/nodes/${MAC}/power`, {
      _csrf: hiddenValue(operPage, '_csrf'),
      driver: 'manual',
    });
    assert.equal(denied.status, 403);

    // A viewer sees the power state but gets no buttons, and the server refuses the action anyway.
    const viewer = new Browser(base);
    assert.equal((await viewer.login('vic', VIEWER_PW)).status, 303);
    const viewerPage = await (await viewer.get('/nodes/box-1')).text();
    assert.match(viewerPage, /power <strong class="power-on">on<\/strong>/);
    assert.doesNotMatch(viewerPage, /action="\/nodes\/[^"]*\/power\//, 'no power buttons for a viewer');
    const viewerCsrf = hiddenValue(viewerPage, '_csrf');
    for (const action of ['off', 'cycle']) {
      const refused = await viewer.post(`/nodes/${MAC}/power/${action}`, {
        _csrf: viewerCsrf,
        confirm: 'yes',
      });
      assert.equal(refused.status, 403, `console ${action} as viewer`);
    }
    assert.equal(powerFile(), '1', 'the viewer changed nothing');

    // The API applies the same rule: viewer refused, operator allowed.
    const basic = (user: string, pw: string): Record<string, string> => ({
      authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`,
    });
    const apiViewer = await fetch(`${base}/api/v1/nodes/${MAC}/power/off`, {
      method: 'POST',
      headers: basic('vic', VIEWER_PW),
    });
    assert.equal(apiViewer.status, 403);
    assert.equal(((await apiViewer.json()) as { error: { code: string } }).error.code, 'FORBIDDEN');
    assert.equal(powerFile(), '1');
    const apiOper = await fetch(`${base}/api/v1/nodes/${MAC}/power/status`, {
      method: 'POST',
      headers: basic('oper', OPER_PW),
    });
    assert.equal(apiOper.status, 200);
    assert.equal(((await apiOper.json()) as { state: string }).state, 'on');
  },
);

test(
  'Run command page: admin only; output recorded and shown; audit row names the run',
  { timeout: 60_000 },
  async () => {
    const oper = new Browser(base);
    await oper.login('oper', OPER_PW);
    assert.equal((await oper.get('/exec')).status, 403);

    const admin = new Browser(base);
    await admin.login('admin', ADMIN_PW);
    const form = await (await admin.get('/exec')).text();
    const res = await admin.post('/exec', {
      _csrf: hiddenValue(form, '_csrf'),
      nodes: 'box-1',
      command: 'echo hi-from-sshd; exit 4',
    });
    assert.equal(res.status, 303);
    const runPath = res.headers.get('location') ?? '';
    assert.match(runPath, /^\/exec\/runs\/\d+$/);
    const done = await waitFor(
      'the run to finish',
      async () => {
        const html = await (await admin.get(runPath)).text();
        return html.includes('1 node(s):') ? html : undefined;
      },
      20_000,
      300,
    );
    assert.match(done, /box-1 \| hi-from-sshd/);
    assert.match(done, /box-1\s+failed\s+exit 4/);
    const audit = repos!.audit.list({ limit: 10 }).find((a) => a.action === 'exec');
    assert.equal(audit?.via, 'console');
    assert.equal(audit?.actor, 'admin');
    assert.match(audit?.detail ?? '', /^run #\d+: echo hi-from-sshd; exit 4 → 1 node\(s\): 0 ok, 1 failed/);
  },
);

test(
  "the poller records a power change made behind the master's back, once",
  { timeout: 30_000 },
  async () => {
    // Only changes from here on: the panel test powered the node off and on through the console.
    const since = repos!.events.list({ limit: 1 })[0]?.id ?? 0;
    writeFileSync(join(dir, 'power'), '0\n'); // someone pressed the button
    await powerControl!.pollAll();
    await powerControl!.pollAll();
    const changes = repos!.events
      .list({ nodeMac: MAC, kind: 'power.state', after: since, limit: 10 })
      .filter((e) => e.data?.['state'] === 'off');
    assert.equal(changes.length, 1);
    assert.equal(changes[0]!.data?.['previous'], 'on');
  },
);

test(
  'deploy from the console reboots through IPMI: PXE next boot, then power on (when off) or cycle (when on)',
  { timeout: 60_000 },
  async () => {
    writeFileSync(join(dir, 'power'), '0\n');
    writeFileSync(join(dir, 'chassis.log'), '');
    const oper = new Browser(base);
    assert.equal((await oper.login('oper', OPER_PW)).status, 303);
    const deploy = async (): Promise<string> => {
      const res = await oper.post(`/nodes/${MAC}/deploy`, {
        _csrf: await oper.csrfToken(),
        image: 'tiny',
        confirm: 'yes',
      });
      assert.equal(res.status, 303);
      return decodeURIComponent(res.headers.get('location') ?? '');
    };
    // box-1 is deployed at 127.0.0.1, where SSH would answer: the power driver must be preferred.
    assert.match(await deploy(), /box-1: deploying tiny \(deployment \d+\); power-cycled into PXE boot/);
    assert.equal(repos!.nodes.get(MAC)?.state, 'deploying');
    assert.equal(readFileSync(join(dir, 'power'), 'utf8').trim(), '1');
    const first = repos!.events.list({ nodeMac: MAC, kind: 'deploy.reboot', limit: 1 })[0];
    assert.equal(first?.data?.['path'], 'power');
    assert.equal(first?.data?.['driver'], 'ipmi');
    assert.match(first?.message ?? '', /powered on through IPMI 127\.0\.0\.1 \(it was off\)/);

    // Deploying again while it runs: a real power cycle.
    assert.match(await deploy(), /power-cycled into PXE boot/);
    assert.match(
      repos!.events.list({ nodeMac: MAC, kind: 'deploy.reboot', limit: 1 })[0]?.message ?? '',
      /power-cycled through IPMI/,
    );
    // A BMC powers back on after its power-cycle interval (IPMI v2.0 §28.3), not at once.
    const t = Date.now();
    await waitFor(
      'power back on after the cycle',
      () => readFileSync(join(dir, 'power'), 'utf8').trim() === '1',
      15_000,
      100,
    );
    console.log(`# ipmi_sim power cycle: back on after ${Date.now() - t} ms`);
    const log = readFileSync(join(dir, 'chassis.log'), 'utf8');
    console.log(
      log
        .trim()
        .split('\n')
        .map((l) => `# chassis: ${l}`)
        .join('\n'),
    );
    assert.match(log, /set boot pxe\nset power 1\nset boot pxe\nset power 0\nset power 1/);
    const actions = repos!.events
      .list({ nodeMac: MAC, kind: 'power.action', limit: 20 })
      .filter((e) => e.actor === 'oper')
      .map((e) => e.data?.['action']);
    assert.deepEqual(actions.reverse(), ['pxe', 'cycle', 'pxe', 'cycle']);
  },
);
