/**
 * The commands that run on the master's machine itself and need no running master: `corral master`
 * (the daemon), `corral lab`, `corral node-image build`, and the lab's internal relay. Their heavy modules
 * are imported when they run, so `corral --help` and the remote commands start without loading the daemon.
 */
import { DEFAULT_NIC_LIST, NIC_MODELS, parseNicList } from '../lab/qemu.js';
import { buildConfig, type ConfigFlags } from '../config.js';
import { nodeImageDir } from '../boot/node-image.js';
import { createLogger, type Logger } from '../util/logger.js';
import { defineCommand, usage } from './command.js';

function noPositionals(positionals: string[]): void {
  if (positionals.length) usage(`unexpected argument '${positionals[0]}'`);
}

function intFlag(name: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    usage(`--${name} must be a whole number from ${min} to ${max} (got '${value}')`);
  }
  return Number(value);
}

function waitForSignal(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, 'shutting down');
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

function untilSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
}

export const masterCommand = defineCommand({
  path: ['master'],
  help: `  corral master --data-dir DIR --address IP [--interface IFACE]
                [--dhcp-range FIRST-LAST | --proxy-dhcp] [--http-port N]
                [--tftp-port N] [--config FILE] [--log-level LEVEL]
      Run the master: DHCP (PXE), TFTP, HTTP boot, REST API and web console. Flags override
      the same keys of the JSON config file (README "Configuration reference"); with --config
      the file may give dataDir and address. CORRAL_ADMIN_PASSWORD sets the first admin password
      (otherwise one is generated into DATA_DIR/initial-admin-password, mode 0600).
`,
  options: {
    'data-dir': { type: 'string' },
    interface: { type: 'string' },
    address: { type: 'string' },
    'dhcp-range': { type: 'string' },
    'proxy-dhcp': { type: 'boolean' },
    'http-port': { type: 'string' },
    'tftp-port': { type: 'string' },
    config: { type: 'string' },
    'log-level': { type: 'string' },
  },
  async run({ values, positionals }, ctx) {
    noPositionals(positionals);
    const flags: ConfigFlags = {
      ...(values['data-dir'] !== undefined ? { dataDir: values['data-dir'] } : {}),
      ...(values.interface !== undefined ? { interface: values.interface } : {}),
      ...(values.address !== undefined ? { address: values.address } : {}),
      ...(values['dhcp-range'] !== undefined ? { dhcpRange: values['dhcp-range'] } : {}),
      ...(values['proxy-dhcp'] ? { proxyDhcp: true } : {}),
      ...(values['http-port'] !== undefined ? { httpPort: values['http-port'] } : {}),
      ...(values['tftp-port'] !== undefined ? { tftpPort: values['tftp-port'] } : {}),
      ...(values['log-level'] !== undefined ? { logLevel: values['log-level'] } : {}),
    };
    const config = buildConfig(ctx.readConfigFile(values.config), flags);
    // The daemon logs to stdout (the journal, the lab's log file) at the configured level.
    const logger = createLogger({ level: config.log.level });
    // The backstop behind every subsystem's own boundary (master/util/faults.ts): an escaped exception is
    // logged with its stack, counted in /api/v1/health, and the master serves on unless a burst of them
    // says it is stuck, then it exits 1 for systemd to start a clean one (and, with HA, the peer to take over).
    const { Faults, installProcessBackstop } = await import('../util/faults.js');
    const faults = new Faults(logger);
    installProcessBackstop(faults, logger);
    const password = ctx.env['CORRAL_ADMIN_PASSWORD'];
    const { startMaster } = await import('../master.js');
    const master = await startMaster(config, {
      logger,
      faults,
      ...(password ? { initialAdminPassword: password } : {}),
    });
    await waitForSignal(logger);
    await master.close();
    logger.info('corral master stopped');
    return 0;
  },
});

export const labCommand = defineCommand({
  path: ['lab'],
  verbs: ['down'],
  help: `  corral lab [--story on|off] [--web N] [--nodes N] [--uefi] [--nic LIST] [--dir DIR] [--port N]
             [--memory MB] [--disk GB] [--cache-dir DIR]
      Build a virtual lab in network namespaces of its own: a master and N QEMU VMs
      that PXE-boot from it (SeaBIOS, or OVMF with --uefi). --nic gives VM i the i-th
      NIC model of LIST (virtio, e1000, e1000e; default virtio,e1000; VMs beyond it: virtio).
      The console is forwarded to a loopback port on this host. Ctrl-C tears it all down.
      --story on (default): two masters (primary, clone, VIP, witness), a rule that deploys
      the first --web N VMs (default 2) as web nodes behind HAProxy on the VIP, and one
      diskless VM (--nodes defaults to N+1; docs/lab.md). --story off: discovery only
      (--nodes defaults to 2). Needs root.
  corral lab down [--dir DIR]
      Tear down a lab whose \`corral lab\` process is gone.
`,
  options: {
    story: { type: 'string', default: 'on' },
    web: { type: 'string', default: '2' },
    nodes: { type: 'string' },
    uefi: { type: 'boolean' },
    nic: { type: 'string', default: DEFAULT_NIC_LIST },
    dir: { type: 'string', default: '.lab' },
    port: { type: 'string', default: '8080' },
    memory: { type: 'string' },
    disk: { type: 'string', default: '4' },
    'cache-dir': { type: 'string', default: '/var/cache/corral' },
  },
  async run({ values, positionals }, ctx) {
    const logger = ctx.logger('warn', 'stdout');
    const { startLab, labDown } = await import('../lab/lab.js');
    type Lab = import('../lab/lab.js').Lab;
    const { followLab } = await import('../lab/progress.js');
    if (positionals[0] === 'down') {
      const done = labDown(values.dir, logger);
      ctx.out(done ? `lab in ${values.dir} torn down\n` : `no lab state in ${values.dir}\n`);
      return 0;
    }
    noPositionals(positionals);
    if (process.getuid?.() !== 0) usage('corral lab creates network namespaces and needs root');
    if (values.story !== 'on' && values.story !== 'off') usage('--story takes on or off');
    const story = values.story === 'on';
    const web = intFlag('web', values.web, 1, 8);
    const n = intFlag('nodes', values.nodes ?? String(story ? web + 1 : 2), 1, 16);
    if (story && n < web + 1)
      usage(`--story on needs --nodes of at least ${web + 1} (${web} web + 1 diskless)`);
    const nics = parseNicList(values.nic, n);
    if ('bad' in nics) usage(`--nic: '${nics.bad}' is not a NIC model (${NIC_MODELS.join(', ')})`);
    const say = (line: string): void => ctx.out(`${line}\n`);
    say(
      `corral lab: building the node environment and starting the master (first run downloads the kernel)...`,
    );
    const { StepClock } = await import('../lab/progress.js');
    const storyMod = story ? await import('../lab/story.js') : undefined;
    const clock = new StepClock(say);
    const aborter = new AbortController();
    const storyOpts = {
      signal: aborter.signal,
      web,
      dir: values.dir,
      cacheDir: values['cache-dir'],
      clock,
    };
    // Handlers stay installed: a second Ctrl-C, or the terminal closing (SIGHUP), must not kill the
    // process half-way through the teardown and leave namespaces and VMs behind. Installed before the lab
    // starts: a Ctrl-C while it comes up (the story's set-up takes a minute or two) tears it down as soon
    // as startLab returns, instead of ending the process with namespaces, masters and VMs left running.
    let interrupted = false;
    let up = false;
    const stopped = new Promise<void>((resolve) => {
      for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
        process.on(signal, () => {
          if (!interrupted && !up) say('corral lab: interrupted; tearing down as soon as the lab is up...');
          interrupted = true;
          aborter.abort();
          resolve();
        });
    });
    let lab: Lab;
    try {
      lab = await startLab({
        ...(storyMod ? { ha: true, beforeVms: (l: Lab) => storyMod.declareStory(l, storyOpts) } : {}),
        dir: values.dir,
        vms: nics.models.map((nic) => ({
          firmware: values.uefi ? ('uefi' as const) : ('bios' as const),
          nic,
        })),
        logger,
        cacheDir: values['cache-dir'],
        hostPort: intFlag('port', values.port, 0, 65535),
        // The installer unpacks the image in RAM-backed stages: deploys want 768 MiB (test/e2e/lab-deploy).
        memoryMb: intFlag('memory', values.memory ?? (story ? '768' : '512'), 256, 8192),
        diskGb: intFlag('disk', values.disk, 1, 64),
      });
    } catch (err) {
      // Aborted by the Ctrl-C above: startLab has torn down what it had started.
      if (interrupted) {
        say('corral lab: done');
        return 130;
      }
      throw err;
    }
    up = true;
    if (interrupted) {
      await lab.destroy();
      say('corral lab: done');
      return 130;
    }
    say('');
    say(
      `Corral lab ${lab.id} is up: master ${lab.masterAddress} in namespace ${lab.masterNs}, ${n} VM(s) PXE-booting.`,
    );
    say(`  Console:  ${lab.hostUrl}/   (user admin, password ${lab.adminPassword})`);
    say(`  API:      curl -u admin:${lab.adminPassword} ${lab.hostUrl}/api/v1/nodes`);
    for (const vm of lab.vms)
      say(`  VM:       ${vm.spec.name} ${vm.spec.mac} NIC ${vm.spec.nic} (${vm.spec.firmware})`);
    say(`  Logs:     ${values.dir}/master.log, ${values.dir}/vm1.log ...`);
    if (lab.ha) {
      say(
        `  VIP:      ${lab.ha.vip} (primary ${lab.masterAddress}, backup ${lab.ha.backup.address}, witness ${lab.ha.witness.address})`,
      );
      say(`  Client:   namespace ${lab.ha.witness.ns} (a host on the lab segment: curl the VIP from there)`);
    }
    say('  Ctrl-C tears everything down (or `corral lab down` from another shell).');
    say('');
    const stopFollowing = followLab(lab, say);
    // `npm start | tee lab.log`: Ctrl-C kills tee too, and the next line written to the closed pipe
    // (EPIPE) would end this process before the teardown below, leaving namespaces and VMs behind.
    for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
    if (storyMod) {
      const poweredOnAt = Date.now();
      const storyDone = storyMod.watchStory(lab, storyOpts, poweredOnAt).then(
        () => {
          say('');
          say(
            `corral lab: the story is complete (${((Date.now() - poweredOnAt) / 1000).toFixed(0)} s after power-on).`,
          );
          for (const line of storyMod.tryNext(lab, storyOpts)) say(line);
          say('  Ctrl-C tears everything down.');
        },
        (err: Error) => {
          if (!aborter.signal.aborted)
            say(`corral lab: the story stopped: ${err.message} (the lab stays up; Ctrl-C tears it down)`);
        },
      );
      await Promise.race([stopped, storyDone]);
    }
    await stopped;
    // The story's polls would keep the process alive after the teardown.
    aborter.abort();
    say('corral lab: tearing down...');
    stopFollowing();
    await lab.destroy();
    say('corral lab: done');
    return 0;
  },
});

export const nodeImageCommand = defineCommand({
  path: ['node-image'],
  verbs: ['build', 'os-image'],
  help: `  corral node-image build (--data-dir DIR | --out-dir DIR) [--cache-dir DIR] [--flavour generic|cloud]
  corral node-image build --kernel-only [--cache-dir DIR] [--flavour generic|cloud]
      Build the node environment (Debian kernel + initramfs with the Corral agent) into a
      data directory (or any --out-dir); works with the master stopped. SOURCE_DATE_EPOCH makes
      it reproducible. --kernel-only only fetches the kernel into the cache (scripts/setup.sh).
  corral node-image os-image [--cache-dir DIR]
      Build (or find cached) the small Debian OS image and print its facts as JSON, without
      importing it (\`corral image build-debian\` imports it into a master).
`,
  options: {
    'data-dir': { type: 'string' },
    'out-dir': { type: 'string' },
    'cache-dir': { type: 'string', default: '/var/cache/corral' },
    flavour: { type: 'string', default: 'generic' },
    'kernel-only': { type: 'boolean' },
  },
  async run({ values, positionals }, ctx) {
    const [verb, ...extra] = positionals;
    if ((verb !== 'build' && verb !== 'os-image') || extra.length)
      usage('usage: corral node-image build --data-dir DIR | corral node-image os-image');
    const logger = ctx.logger('info', 'stdout');
    if (verb === 'os-image') {
      const { buildOsImage } = await import('../../node-images/os-image.js');
      const image = await buildOsImage({ cacheDir: values['cache-dir'], logger });
      ctx.out(`${JSON.stringify(image, null, 2)}\n`);
      return 0;
    }
    const flavour = values.flavour;
    if (flavour !== 'cloud' && flavour !== 'generic')
      usage(`--flavour must be cloud or generic (got '${flavour}')`);
    if (values['kernel-only']) {
      const { ensureKernel } = await import('../../node-images/index.js');
      const kernel = await ensureKernel({ cacheDir: values['cache-dir'], flavour, logger });
      ctx.out(
        `kernel ${kernel.packageName}=${kernel.packageVersion} ${kernel.fromCache ? 'cached' : 'downloaded'} ` +
          `in ${values['cache-dir']}\n`,
      );
      return 0;
    }
    if (values['data-dir'] !== undefined && values['out-dir'] !== undefined)
      usage('--data-dir and --out-dir exclude each other');
    const outDir = values['out-dir'] ?? (values['data-dir'] ? nodeImageDir(values['data-dir']) : undefined);
    if (!outDir) usage('--data-dir (or --out-dir) is required');
    const epoch = ctx.env['SOURCE_DATE_EPOCH'];
    const { buildNodeImage } = await import('../../node-images/index.js');
    const image = await buildNodeImage({
      cacheDir: values['cache-dir'],
      outDir,
      flavour,
      logger,
      ...(epoch && /^\d+$/.test(epoch) ? { sourceDateEpoch: Number(epoch) } : {}),
    });
    ctx.out(`${JSON.stringify(image, null, 2)}\n`);
    return 0;
  },
});

/** Internal: the lab's console relay inside the master namespace (`_forward SOCKET HOST PORT`). */
export const forwardCommand = defineCommand({
  path: ['_forward'],
  hidden: true,
  help: `  corral _forward SOCKET HOST PORT
      Internal (corral lab): relay a Unix socket to HOST:PORT until a signal.
`,
  options: {},
  async run({ positionals }) {
    const [sock, host, port] = positionals;
    if (!sock || !host || !port) usage('usage: corral _forward SOCKET HOST PORT');
    const { forwardUnixToTcp } = await import('../lab/forward.js');
    const server = await forwardUnixToTcp(sock, host, Number(port));
    await untilSignal();
    server.close();
    return 0;
  },
});
