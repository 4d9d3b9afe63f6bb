/**
 * ClusterMaker's story in the virtual lab (issue 16): machines set to PXE boot are powered on and Corral
 * does the rest. Before any VM powers on, the lab (as an operator would, through the API) declares what
 * should happen: the first N VMs become `web` nodes (an enrolment rule deploying the Debian image, whose
 * cloud-init user-data writes and starts a small web app), one more boots diskless from a shared root,
 * and a `web` service on the VIP balances over whatever carries the role. Then it only watches (reads):
 * the backup master is cloned, the rules deploy the machines, HAProxy picks them up, and the lab curls the
 * VIP until every web node has answered.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Lab } from './lab.js';
import { CLI, startMasterProcess } from './master-process.js';
import { makeDemoRoot } from './demo-root.js';
import { waitFor } from './net.js';
import type { StepClock } from './progress.js';

const exec = promisify(execFile);

export const STORY_IMAGE = 'debian-12';
export const STORY_ROOT = 'demo';
/** Front-end port of the `web` service on the VIP (the masters' own HTTP holds port 80 on every address). */
export const WEB_PORT = 8000;

export interface StoryOptions {
  /** How many of the lab's VMs (the first ones) the rule deploys as web nodes; the next one is diskless. */
  web: number;
  dir: string;
  cacheDir: string;
  clock: StepClock;
  /** Aborted when the lab is torn down: the watching stops (its polls would keep the process alive). */
  signal?: AbortSignal;
}

/** The demo web app, as cloud-init user-data for role `web` (docs/cloud-init.md's template variables). */
export const WEB_USER_DATA = `#cloud-config
# Written by \`corral lab\` (the story): a tiny web app on port ${WEB_PORT} that names the node serving it.
write_files:
  - path: /srv/www/index.html
    content: |
      hello from {{hostname}} ({{ip}}), deployed by Corral with no operator step
  - path: /etc/systemd/system/corral-demo-web.service
    content: |
      [Unit]
      Description=Corral demo web app (from cloud-init user-data)
      After=network-online.target
      [Service]
      ExecStart=/usr/bin/python3 -m http.server ${WEB_PORT} --directory /srv/www
      Restart=always
      [Install]
      WantedBy=multi-user.target
runcmd:
  - [systemctl, daemon-reload]
  - [systemctl, enable, --now, corral-demo-web.service]
`;

type Json = Record<string, unknown>;

/** One API call through the lab's console relay; any status but 2xx is an error naming the call. */
export async function labApi<T = Json>(lab: Lab, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${lab.hostUrl}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Basic ${Buffer.from(`admin:${lab.adminPassword}`).toString('base64')}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(120_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} /api/v1${path}: HTTP ${res.status} ${text.slice(0, 500)}`);
  return (text ? JSON.parse(text) : {}) as T;
}

/** The rules, layer, shared root and service; runs before any VM powers on (LabOptions.beforeVms). */
export async function declareStory(lab: Lab, o: StoryOptions): Promise<void> {
  const { clock } = o;
  if (lab.macs.length < o.web + 1)
    throw new Error(`the story needs ${o.web + 1} VMs (${o.web} web + 1 diskless)`);
  o.signal?.throwIfAborted(); // Ctrl-C while the story is declared: stop here (the lab tears down)
  o.signal?.throwIfAborted();
  await clock.step('primary master holds the VIP (keepalived, witness granted the epoch)', () =>
    waitFor(
      'the primary',
      async () => {
        o.signal?.throwIfAborted();
        const s = await labApi<{ role: string }>(lab, 'GET', '/ha/status').catch(() => undefined);
        return s?.role === 'primary' ? true : undefined;
      },
      60_000,
      500,
    ),
  );
  o.signal?.throwIfAborted();
  await clock.step(`OS image ${STORY_IMAGE} (Debian + cloud-init; cached in ${o.cacheDir})`, async () => {
    const dataDir = join(o.dir, 'master');
    const { stdout } = await exec(
      'node',
      [
        CLI,
        'image',
        'build-debian',
        '--name',
        STORY_IMAGE,
        '--data-dir',
        dataDir,
        '--cache-dir',
        o.cacheDir,
        '--json',
      ],
      { timeout: 30 * 60_000, maxBuffer: 1 << 20, ...(o.signal ? { signal: o.signal } : {}) },
    );
    const img = JSON.parse(stdout) as { sizeBytes: number };
    return `${(img.sizeBytes / 2 ** 20).toFixed(0)} MiB`;
  });
  o.signal?.throwIfAborted();
  await clock.step(`shared root "${STORY_ROOT}" (busybox) for the diskless node`, async () => {
    const tree = join(o.dir, 'demo-root');
    makeDemoRoot(tree);
    await labApi(lab, 'POST', '/sharedroots', { name: STORY_ROOT, fromDir: tree });
  });
  o.signal?.throwIfAborted();
  await clock.step(
    'cloud-init user-data for role web: the demo web app (PUT /cloud-init/layers/role/web)',
    () => labApi(lab, 'PUT', '/cloud-init/layers/role/web', { content: WEB_USER_DATA }).then(() => undefined),
  );
  o.signal?.throwIfAborted();
  await clock.step(
    `service web on the VIP ${lab.ha?.vip ?? lab.masterAddress}:${WEB_PORT} (HAProxy, role web)`,
    () =>
      labApi(lab, 'POST', '/services', {
        name: 'web',
        port: WEB_PORT,
        backendPort: WEB_PORT,
        role: 'web',
        check: { type: 'http', path: '/', expectStatus: 200 },
        intervalMs: 1000,
        rise: 1,
        fall: 2,
      }).then(() => undefined),
  );
  const webMacs = lab.macs.slice(0, o.web);
  const disklessMac = lab.macs[o.web]!;
  o.signal?.throwIfAborted();
  await clock.step(
    `enrolment rule "web": the first ${o.web} VMs → web-{n}, role web, deploy ${STORY_IMAGE}`,
    () =>
      labApi(lab, 'POST', '/rules', {
        name: 'web',
        limit: o.web,
        match: { mac: webMacs },
        outcome: {
          name: 'web-{n}',
          role: 'web',
          tags: ['web', 'story'],
          action: { type: 'deploy', image: STORY_IMAGE },
        },
      }).then(() => undefined),
  );
  o.signal?.throwIfAborted();
  await clock.step(`enrolment rule "diskless": the next VM → diskless-{n}, shared root ${STORY_ROOT}`, () =>
    labApi(lab, 'POST', '/rules', {
      name: 'diskless',
      limit: 1,
      match: { mac: [disklessMac] },
      outcome: {
        name: 'diskless-{n}',
        role: 'diskless',
        tags: ['story'],
        action: { type: 'diskless', root: STORY_ROOT },
      },
    }).then(() => undefined),
  );
}

interface ApiNode {
  mac: string;
  name: string;
  state: string;
  ip: string | null;
}

interface ServiceView {
  up: number;
  servers: { mac: string; name: string; health: string; checkStatus: string | null }[];
}

/** Answers of the web service through the VIP, from the witness host (a client on the segment). */
export async function curlVip(lab: Lab, tries: number): Promise<string[]> {
  const ha = lab.ha;
  const url = `http://${ha?.vip ?? lab.masterAddress}:${WEB_PORT}/`;
  const ns = ha?.witness.ns ?? lab.masterNs;
  const answers: string[] = [];
  for (let i = 0; i < tries; i++) {
    const r = await exec('ip', ['netns', 'exec', ns, 'curl', '-sS', '-m', '3', url], {
      timeout: 10_000,
    }).catch(() => undefined);
    if (r?.stdout.trim()) answers.push(r.stdout.trim());
  }
  return answers;
}

/**
 * After the VMs power on: the backup master is cloned and started, then the lab watches (API reads and
 * curl only) until the web service answers through the VIP from every web node and the diskless node is up.
 * Returns when the story is complete.
 */
/** When each web node (by MAC) reached `deployed` and HAProxy's `UP` (ms since the epoch). */
export interface StoryTimes {
  deployed: Map<string, number>;
  serving: Map<string, number>;
}

export async function watchStory(lab: Lab, o: StoryOptions, poweredOnAt: number): Promise<StoryTimes> {
  const { clock } = o;
  const ha = lab.ha;
  if (!ha) throw new Error('the story needs a lab started with ha');
  const diskless = lab.vms[o.web];
  const disklessUp = new Promise<string>((resolve, reject) => {
    o.signal?.addEventListener('abort', () => reject(new Error('the lab was torn down')));
    diskless?.onLine((line) => {
      const m = /corral: diskless node (\S+) is up/.exec(line);
      if (m) resolve(m[1]!);
    });
  });

  await clock.step(
    `backup master: corral clone from the primary, then started (${ha.backup.address})`,
    async () => {
      await exec(
        'ip',
        [
          'netns',
          'exec',
          ha.backup.ns,
          'node',
          CLI,
          'clone',
          '--from',
          `https://${lab.masterAddress}`,
          '--token',
          ha.token,
          '--data-dir',
          ha.backupDataDir,
          '--address',
          ha.backup.address,
          '--interface',
          ha.backup.ifname,
          '--priority',
          '100',
        ],
        { timeout: 10 * 60_000, maxBuffer: 4 << 20 },
      );
      const backup = await startMasterProcess({
        args: ['--config', join(ha.backupDataDir, 'corral.json')],
        netns: ha.backup.ns,
        host: ha.backup.address,
        env: { CORRAL_ADMIN_PASSWORD: lab.adminPassword, CORRAL_LOG_LEVEL: 'info' },
        logFile: join(o.dir, 'backup.log'),
        timeoutMs: 60_000,
      });
      lab.adopt(backup);
    },
  );

  const webMacs = lab.macs.slice(0, o.web);
  const live = (): void => o.signal?.throwIfAborted();
  const deployed = new Map<string, number>();
  const serving = new Map<string, number>();
  const secs = (t: number): string => `${((t - poweredOnAt) / 1000).toFixed(0)} s`;
  const disklessStep = clock.step('diskless node booted from the shared root (NFS, overlay)', async () => {
    const name = await disklessUp;
    return `${name}, ${secs(Date.now())} after power-on`;
  });
  // Awaited after the web step; if that step throws first (Ctrl-C aborts both), this rejection must not be
  // an unhandled one, which would end the process before the lab's teardown.
  disklessStep.catch(() => {});
  await clock.step(`web nodes deployed by the rule and serving behind HAProxy (${o.web})`, () =>
    waitFor(
      'every web node to serve behind the load balancer',
      async () => {
        live();
        const nodes = (await labApi<{ nodes: ApiNode[] }>(lab, 'GET', '/nodes').catch(() => undefined))
          ?.nodes;
        for (const n of nodes ?? []) {
          if (webMacs.includes(n.mac) && n.state === 'deployed' && !deployed.has(n.mac)) {
            deployed.set(n.mac, Date.now());
            clock.note(`${n.name} deployed (${n.ip ?? '-'}), ${secs(Date.now())} after power-on`);
          }
        }
        const svc = await labApi<{ service: ServiceView }>(lab, 'GET', '/services/web').catch(
          () => undefined,
        );
        for (const s of svc?.service.servers ?? []) {
          // HAProxy starts a new server as UP before its first check: only a passed HTTP check (L7OK)
          // says the demo app answers.
          if (s.health === 'up' && /^L7OK/.test(s.checkStatus ?? '') && !serving.has(s.mac)) {
            serving.set(s.mac, Date.now());
            clock.note(`${s.name} UP behind HAProxy, ${secs(Date.now())} after power-on`);
          }
        }
        return webMacs.every((m) => serving.has(m)) ? true : undefined;
      },
      60 * 60_000,
      2000,
    ),
  );
  await clock.step(`service web answers through the VIP from ${o.web} nodes`, () =>
    waitFor(
      'answers from every web node through the VIP',
      async () => {
        live();
        const names = new Set(
          (await curlVip(lab, 2 * o.web)).map((a) => /hello from (\S+)/.exec(a)?.[1] ?? a),
        );
        return names.size >= o.web ? [...names].sort().join(', ') : undefined;
      },
      120_000,
      1000,
    ).then((names) => {
      clock.note(
        `service web healthy on ${o.web} nodes through the VIP http://${ha.vip}:${WEB_PORT}/: ${names}`,
      );
    }),
  );
  await disklessStep;
  return { deployed, serving };
}

/** "What to try next", with commands that work on this lab as it runs. */
export function tryNext(lab: Lab, o: StoryOptions): string[] {
  const ha = lab.ha!;
  const cli = `node ${CLI}`;
  const auth = `CORRAL_URL=${lab.hostUrl} CORRAL_PASSWORD=${lab.adminPassword}`;
  const curl = `sudo ip netns exec ${ha.witness.ns} curl -s http://${ha.vip}:${WEB_PORT}/`;
  const web1 = lab.vms[0]!;
  return [
    'What to try next:',
    `  The web service through the VIP (a client on the lab segment):`,
    `    ${curl}`,
    `  Stop a web node and watch it leave the load balancer (HAProxy marks it DOWN within ~2 s):`,
    `    sudo kill ${web1.child.pid ?? '?'}      # QEMU of ${web1.spec.name}, ${web1.spec.mac}`,
    `    ${auth} ${cli} service show web`,
    `  Kill the primary master (and its keepalived) and watch the VIP move to the backup:`,
    `    sudo kill -9 $(cat ${join(o.dir, 'master', 'ha', 'keepalived.pid')}) ${lab.master.child.pid ?? '?'}`,
    `    sudo ip netns exec ${ha.backup.ns} ip -4 addr show   # ${ha.vip} appears here within ~6 s`,
    `    ${curl}      # still answers`,
    `  Take a restore point and restore it:`,
    `    ${auth} ${cli} snapshot create --name before-change`,
    `    ${auth} ${cli} snapshot restore before-change --confirm before-change`,
    `  Console: ${lab.hostUrl}/ (Enrolment rules: the dry run; Audit log: actor rule:web; Services: web)`,
  ];
}
