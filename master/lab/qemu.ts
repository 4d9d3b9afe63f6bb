/**
 * QEMU VMs that PXE-boot from Corral (shared/LAB.md): TCG only (nested KVM breaks iPXE here), a NIC whose
 * iPXE option ROM (Debian's ipxe-qemu) sends user class "iPXE" — virtio-net, or an emulated Intel e1000 /
 * e1000e standing in for a physical server NIC — SeaBIOS by default or OVMF for UEFI, a qcow2 disk with a
 * serial number, and the serial console on stdout so markers printed by the node agent can be followed.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { LabNet } from './net.js';

export const OVMF_PATHS = ['/usr/share/ovmf/OVMF.fd', '/usr/share/qemu/OVMF.fd'];
export const EFI_VIRTIO_ROM = '/usr/lib/ipxe/qemu/efi-virtio.rom';
/** Debian ovmf's Secure Boot build and its variable store with Microsoft's keys enrolled (issue 18). */
export const OVMF_SB_CODE = '/usr/share/OVMF/OVMF_CODE_4M.ms.fd';
export const OVMF_SB_VARS = '/usr/share/OVMF/OVMF_VARS_4M.ms.fd';

/**
 * NIC models of lab VMs: `virtio` is what clouds give VMs; `e1000` (Intel 82540EM) and `e1000e` (82574L)
 * are what QEMU offers of a physical server's Intel NIC, so they test the drivers real servers need.
 */
export const NIC_MODELS = ['virtio', 'e1000', 'e1000e'] as const;
export type NicModel = (typeof NIC_MODELS)[number];

/** QEMU device and Debian ipxe-qemu option ROM (EFI + legacy PXE images in one file) per model. */
const NIC_DEVICES: Readonly<Record<NicModel, { device: string; efiRom: string }>> = {
  virtio: { device: 'virtio-net-pci', efiRom: EFI_VIRTIO_ROM },
  e1000: { device: 'e1000', efiRom: '/usr/lib/ipxe/qemu/efi-e1000.rom' },
  e1000e: { device: 'e1000e', efiRom: '/usr/lib/ipxe/qemu/efi-e1000e.rom' },
};

/** The lab's default: VM 2 on an Intel NIC, so a two-VM lab shows a physical-NIC stand-in beside virtio. */
export const DEFAULT_NIC_LIST = 'virtio,e1000';

/**
 * `--nic virtio,e1000,...`: VM i gets the i-th model; VMs beyond the list get virtio. An unknown model
 * comes back as `bad` (the CLI turns it into a usage error).
 */
export function parseNicList(text: string, vmCount: number): { models: NicModel[] } | { bad: string } {
  const words = text.split(',').map((w) => w.trim());
  const models: NicModel[] = [];
  for (const w of words) {
    const model = NIC_MODELS.find((m) => m === w);
    if (!model) return { bad: w };
    models.push(model);
  }
  return { models: Array.from({ length: vmCount }, (_, i) => models[i] ?? 'virtio') };
}

export interface VmSpec {
  name: string;
  /**
   * A QMP control socket (QEMU Machine Protocol, docs/interop/qmp-spec): a BMC stand-in drives the VM's
   * power and boot order through it (test/helpers/redfish-server.ts). With it the NIC and disk get the
   * device ids `nic0` and `disk0`, which QMP commands name.
   */
  qmpSocket?: string;
  mac: string;
  /**
   * `uefi-http`: OVMF with no iPXE option ROM, so the firmware's own PXE and UEFI HTTP boot run (issue 18).
   * `uefi-sb`: the same with Secure Boot enforced (OVMF's SMM build, Microsoft's keys enrolled).
   */
  firmware: 'bios' | 'uefi' | 'uefi-http' | 'uefi-sb';
  /**
   * The firmware's own network stack (OVMF, not BIOS): `ipv4` (default) turns IPv6 off, as the lab link is
   * IPv4; `ipv6` turns IPv4 off, an IPv6-only machine that boots PXE over IPv6 on a dual-stack link.
   */
  ipStack?: 'ipv4' | 'ipv6';
  nic: NicModel;
  memoryMb: number;
  cpus: number;
  /** qcow2 disk path; created with diskGb if missing. */
  diskPath: string;
  diskGb: number;
  diskSerial: string;
  tap: string;
  /** QEMU exits instead of rebooting (tests); the lab lets VMs reboot into their next boot step. */
  noReboot: boolean;
  /**
   * A Unix socket offering the VM's serial line to the master's serial console (issue 20). QEMU's serial
   * stays on stdio (the lab and tests follow its lines); this relay hands the same bytes to every
   * connected client and feeds what they send to QEMU's stdin, like a console server on a serial port.
   */
  consoleSocket?: string;
}

/** The QEMU command line for a spec; pure so it is unit-tested. */
export function qemuArgs(spec: VmSpec, ovmf: string | undefined): string[] {
  const model = NIC_DEVICES[spec.nic];
  const nic = [model.device, `netdev=n0`, `mac=${spec.mac}`, `bootindex=1`];
  if (spec.qmpSocket) nic.push('id=nic0');
  if (spec.firmware === 'uefi') nic.push(`romfile=${model.efiRom}`);
  // No iPXE ROM under Secure Boot either: shim cannot load GRUB through iPXE's PXE (it reports no file
  // size; shared/LAB.md), and real firmware's own PXE stack is what the signed chain meets.
  if (spec.firmware === 'uefi-http' || spec.firmware === 'uefi-sb') nic.push('romfile=');
  const args = [
    '-name',
    spec.name,
    '-accel',
    'tcg',
    '-m',
    String(spec.memoryMb),
    '-smp',
    String(spec.cpus),
    '-display',
    'none',
    '-monitor',
    'none',
    '-serial',
    'stdio',
    '-netdev',
    `tap,id=n0,ifname=${spec.tap},script=no,downscript=no`,
    '-device',
    nic.join(','),
    '-drive',
    `file=${spec.diskPath},if=none,id=d0,format=qcow2`,
    '-device',
    `virtio-blk-pci,drive=d0,serial=${spec.diskSerial},bootindex=2${spec.qmpSocket ? ',id=disk0' : ''}`,
  ];
  if (spec.qmpSocket) args.push('-qmp', `unix:${spec.qmpSocket},server=on,wait=off`);
  if (spec.firmware === 'uefi-sb') {
    // Secure Boot needs SMM (so the OS cannot write the variable store behind the firmware's back) and a
    // writable copy of the variables per VM (startVm makes it beside the disk).
    args.push(...secureBootArgs(sbVarsPath(spec)), '-fw_cfg', 'name=opt/org.tianocore/IPv6Support,string=no');
  } else if (spec.firmware !== 'bios') {
    if (!ovmf) throw new Error('UEFI VM requested but OVMF is not installed (Debian package ovmf)');
    args.push('-bios', ovmf);
    if (spec.ipStack === 'ipv6')
      // An IPv6-only machine: no PXEv4 and no IPv4 stack (so no HTTPv4 either; edk2's fw_cfg network knobs).
      args.push(
        '-fw_cfg',
        'name=opt/org.tianocore/IPv4PXESupport,string=n',
        '-fw_cfg',
        'name=opt/org.tianocore/IPv4Support,string=n',
      );
    // The lab network is IPv4 unless the lab is dual-stack. Without IPv6, OVMF offers no PXEv6/HTTPv6 boot
    // entries, each of which would wait out its own DHCPv6 timeout before the firmware reaches the disk
    // of a deployed node.
    else args.push('-fw_cfg', 'name=opt/org.tianocore/IPv6Support,string=no');
  }
  if (spec.noReboot) args.push('-no-reboot');
  return args;
}

/**
 * OVMF with Microsoft's keys enrolled and Secure Boot enforced: SMM (so the OS cannot write the variable
 * store behind the firmware's back) and `varsPath`, a writable copy of OVMF_SB_VARS for this VM.
 */
export function secureBootArgs(varsPath: string): string[] {
  return [
    '-machine',
    'q35,smm=on',
    '-global',
    'driver=cfi.pflash01,property=secure,value=on',
    '-drive',
    `if=pflash,format=raw,unit=0,file=${OVMF_SB_CODE},readonly=on`,
    '-drive',
    `if=pflash,format=raw,unit=1,file=${varsPath}`,
  ];
}

/** The VM's own copy of the Secure Boot variable store. */
export function sbVarsPath(spec: Pick<VmSpec, 'diskPath'>): string {
  return `${spec.diskPath}.vars.fd`;
}

export function findOvmf(): string | undefined {
  return OVMF_PATHS.find((p) => existsSync(p));
}

export interface Vm {
  spec: VmSpec;
  child: ChildProcess;
  logPath: string;
  /** Everything the serial console printed so far (last 1 MiB). */
  console(): string;
  onLine(listener: (line: string) => void): void;
  exited(): boolean;
  kill(): void;
}

/** Starts a VM inside the lab's bridge namespace; its console goes to `logPath` and to listeners. */
export function startVm(net: LabNet, spec: VmSpec, logPath: string): Vm {
  if (!existsSync(spec.diskPath)) {
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', spec.diskPath, `${spec.diskGb}G`]);
  }
  if (spec.firmware === 'uefi-sb' && !existsSync(sbVarsPath(spec))) {
    if (!existsSync(OVMF_SB_VARS))
      throw new Error(`Secure Boot VM requested but ${OVMF_SB_VARS} is missing (Debian package ovmf)`);
    copyFileSync(OVMF_SB_VARS, sbVarsPath(spec));
  }
  const child = net.spawnIn(net.bridgeNs, ['qemu-system-x86_64', ...qemuArgs(spec, findOvmf())], {
    stdio: [spec.consoleSocket ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  const relay = spec.consoleSocket ? serialRelay(spec.consoleSocket, child) : undefined;
  const file = createWriteStream(logPath, { flags: 'a' });
  let text = '';
  let partial = '';
  const listeners: ((line: string) => void)[] = [];
  const onData = (d: Buffer): void => {
    file.write(d);
    const s = d.toString('utf8');
    text += s;
    if (text.length > 1 << 20) text = text.slice(-(1 << 19));
    partial += s;
    const lines = partial.split(/\r?\n/);
    partial = lines.pop() ?? '';
    for (const line of lines) for (const l of listeners) l(line);
  };
  child.stdout?.on('data', (d: Buffer) => {
    relay?.output(d);
    onData(d);
  });
  child.stderr?.on('data', onData);
  child.once('exit', () => {
    file.end();
    relay?.close();
  });
  return {
    spec,
    child,
    logPath,
    console: () => text,
    onLine: (l) => listeners.push(l),
    exited: () => child.exitCode !== null || child.signalCode !== null,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/**
 * The console relay of `VmSpec.consoleSocket`: QEMU's stdin is a pipe, not a terminal, so QEMU passes
 * every byte (0x03 included) to the guest's UART instead of acting on it.
 */
function serialRelay(path: string, child: ChildProcess): { output(d: Buffer): void; close(): void } {
  mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
  rmSync(path, { force: true });
  const clients = new Set<Socket>();
  const server = createServer((c) => {
    clients.add(c);
    c.on('data', (d) => child.stdin?.write(d));
    c.on('error', () => c.destroy());
    c.on('close', () => clients.delete(c));
  });
  child.stdin?.on('error', () => undefined);
  // A path the kernel refuses (over 107 bytes) leaves the VM without a console, not the lab broken.
  server.on('error', () => undefined);
  server.listen(path);
  return {
    output: (d) => {
      for (const c of clients) c.write(d);
    },
    close: () => {
      for (const c of clients) c.destroy();
      server.close();
      rmSync(path, { force: true });
    },
  };
}

/** Locally administered MACs in QEMU's 52:54:00 range, numbered per lab. */
export function labMac(labByte: number, index: number): string {
  const hex = (n: number): string => n.toString(16).padStart(2, '0');
  return `52:54:00:${hex(labByte)}:${hex((index >> 8) & 255)}:${hex(index & 255)}`;
}
