/**
 * QEMU VMs that PXE-boot from Corral (shared/LAB.md): TCG only (nested KVM breaks iPXE here), virtio-net
 * whose iPXE option ROM sends user class "iPXE", SeaBIOS by default or OVMF for UEFI, a qcow2 disk with a
 * serial number, and the serial console on stdout so markers printed by the node agent can be followed.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import type { LabNet } from './net.js';

export const OVMF_PATHS = ['/usr/share/ovmf/OVMF.fd', '/usr/share/qemu/OVMF.fd'];
export const EFI_VIRTIO_ROM = '/usr/lib/ipxe/qemu/efi-virtio.rom';

export interface VmSpec {
  name: string;
  mac: string;
  firmware: 'bios' | 'uefi';
  memoryMb: number;
  cpus: number;
  /** qcow2 disk path; created with diskGb if missing. */
  diskPath: string;
  diskGb: number;
  diskSerial: string;
  tap: string;
  /** QEMU exits instead of rebooting (tests); the lab lets VMs reboot into their next boot step. */
  noReboot: boolean;
}

/** The QEMU command line for a spec; pure so it is unit-tested. */
export function qemuArgs(spec: VmSpec, ovmf: string | undefined): string[] {
  const nic = [`virtio-net-pci`, `netdev=n0`, `mac=${spec.mac}`, `bootindex=1`];
  if (spec.firmware === 'uefi') nic.push(`romfile=${EFI_VIRTIO_ROM}`);
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
    `virtio-blk-pci,drive=d0,serial=${spec.diskSerial},bootindex=2`,
  ];
  if (spec.firmware === 'uefi') {
    if (!ovmf) throw new Error('UEFI VM requested but OVMF is not installed (Debian package ovmf)');
    // The lab network is IPv4 only. Without IPv6, OVMF offers no PXEv6/HTTPv6 boot entries, each of which
    // would wait out its own DHCPv6 timeout before the firmware reaches the disk of a deployed node.
    args.push('-bios', ovmf, '-fw_cfg', 'name=opt/org.tianocore/IPv6Support,string=no');
  }
  if (spec.noReboot) args.push('-no-reboot');
  return args;
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
  const child = net.spawnIn(net.bridgeNs, ['qemu-system-x86_64', ...qemuArgs(spec, findOvmf())], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  child.once('exit', () => file.end());
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

/** Locally administered MACs in QEMU's 52:54:00 range, numbered per lab. */
export function labMac(labByte: number, index: number): string {
  const hex = (n: number): string => n.toString(16).padStart(2, '0');
  return `52:54:00:${hex(labByte)}:${hex((index >> 8) & 255)}:${hex(index & 255)}`;
}
