/**
 * The Secure Boot chain over UEFI HTTP boot (issue 18): an ISO image the firmware boots from a RAM disk.
 *
 * Why an ISO and not shim's own HTTP download (measured with Debian 12's packages, OVMF's Secure Boot
 * firmware, docs/secure-boot.md): shim loaded by HTTP boot does fetch `grubx64.efi` from its own URL's
 * directory, and the signed network GRUB does configure the network and sets its prefix to
 * `(http,SERVER)/grub` — but grub-efi-amd64-signed's grubnetx64 embeds no `http` module (only `tftp`), and
 * under Secure Boot GRUB loads no module from outside its image. It stops at `grub>` having read nothing.
 *
 * UEFI HTTP boot can also boot a CD image (UEFI 2.5+ §24.7.3: Content-Type `application/vnd.efi-iso`):
 * EDK2's HttpBootDxe downloads it into a RAM disk and the boot manager starts `\EFI\BOOT\BOOTX64.EFI` from
 * its El Torito image. Here that is shim, with the signed network GRUB beside it as `grubx64.efi`; GRUB
 * then names the CD itself as its boot device (`(cd0)`, prefix `(cd0)/grub`, read through the iso9660
 * module it does embed) and reads `/grub/grub.cfg` from the ISO's file system: the boot decision for
 * the MAC in the URL, rendered from templates/grub/ like the TFTP chain's. The kernel (Debian's signed
 * one, checked by GRUB through shim) and the initrds are on the same ISO, so GRUB needs no network.
 *
 * The ISO is built once per set of inputs (shim, GRUB, kernel, initrds) with a fixed-size slot for
 * grub.cfg; each request streams that ISO with the node's config written into the slot, so a thousand
 * nodes cost one ISO on disk and no build per boot.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import type { Request, Response } from 'express';
import type { Logger } from '../util/logger.js';

const execFileAsync = promisify(execFile);

/** Runs a build tool; a missing one is named with the package that brings it. */
async function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; maxBuffer?: number } = {}) {
  try {
    return await execFileAsync(cmd, args, opts);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(
        `${cmd} is not installed: the HTTP boot ISO needs Debian packages xorriso, mtools and dosfstools (scripts/setup.sh)`,
      );
    }
    throw err;
  }
}

/** EDK2 HttpBootCheckImageType: this Content-Type makes the firmware boot the body as a RAM-disk CD. */
export const HTTP_BOOT_ISO_TYPE = 'application/vnd.efi-iso';

/** Room for the node's grub.cfg in the ISO; rendered configs are about 1 KiB. */
export const CFG_SLOT_BYTES = 16 * 1024;

/** Where a node's HTTP boot ISO is served (NODE_ROUTES `httpBootIso`), and what DHCP names as its URL. */
export function httpBootIsoUrl(httpBaseUrl: string, mac: string): string {
  return `${httpBaseUrl.replace(/\/+$/, '')}/boot/http/${mac}/corral.iso`;
}

/** The files the ISO carries. */
export interface IsoInputs {
  /** shim-signed's shimx64.efi.signed: the El Torito image's \EFI\BOOT\BOOTX64.EFI. */
  shim: string;
  /** grub-efi-amd64-signed's grubnetx64.efi.signed: beside shim as grubx64.efi (shim's DEFAULT_LOADER). */
  grub: string;
  /** The node environment: /node/vmlinuz and /node/initrd.img, the paths templates/grub/ boot. */
  kernel: string;
  initrd: string;
  /** /installer/tools.img (install.hbs), once built. */
  installerTools?: string | undefined;
}

export interface BaseIso {
  path: string;
  size: number;
  /** Byte offset of the grub.cfg slot in the ISO. */
  cfgOffset: number;
}

/** A rendered GRUB config padded with newlines to the slot's size (blank lines are nothing to GRUB). */
export function fillCfgSlot(cfg: string): Buffer {
  const body = Buffer.from(cfg.endsWith('\n') ? cfg : `${cfg}\n`);
  if (body.length > CFG_SLOT_BYTES) {
    throw new Error(`GRUB config of ${body.length} bytes does not fit the ISO's ${CFG_SLOT_BYTES}-byte slot`);
  }
  return Buffer.concat([body, Buffer.alloc(CFG_SLOT_BYTES - body.length, 0x0a)]);
}

/** The offsets of `marker` in a file, read in chunks (an ISO is tens of MiB). */
export function findMarker(file: string, marker: Buffer): number[] {
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.alloc(4 * 1024 * 1024);
    const found: number[] = [];
    let carry = Buffer.alloc(0);
    let pos = 0;
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, pos);
      if (n === 0) break;
      const window = Buffer.concat([carry, chunk.subarray(0, n)]);
      const windowStart = pos - carry.length;
      for (let i = window.indexOf(marker); i !== -1; i = window.indexOf(marker, i + 1)) {
        const at = windowStart + i;
        if (!found.includes(at)) found.push(at);
      }
      carry = Buffer.from(window.subarray(Math.max(0, window.length - marker.length + 1)));
      pos += n;
    }
    return found;
  } finally {
    closeSync(fd);
  }
}

/** Sizes and times of the inputs: a changed package or a rebuilt node environment makes a new ISO. */
function inputsKey(inputs: IsoInputs): string {
  const h = createHash('sha256');
  for (const f of [inputs.shim, inputs.grub, inputs.kernel, inputs.initrd, inputs.installerTools]) {
    if (f === undefined) continue;
    const s = statSync(f);
    h.update(`${f}\0${s.size}\0${s.mtimeMs}\0`);
  }
  return h.digest('hex').slice(0, 16);
}

/** Builds and keeps the base ISO in `dir` (DATA_DIR/http-boot). */
export class HttpBootIsos {
  private current: { key: string; iso: Promise<BaseIso> } | undefined;

  constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  /** The ISO for these inputs: the one on disk if they did not change, else a new build (one at a time). */
  base(inputs: IsoInputs): Promise<BaseIso> {
    const key = inputsKey(inputs);
    if (this.current?.key === key) return this.current.iso;
    const iso = this.build(inputs, key);
    this.current = { key, iso };
    iso.catch(() => {
      if (this.current?.key === key) this.current = undefined;
    });
    return iso;
  }

  private async build(inputs: IsoInputs, key: string): Promise<BaseIso> {
    const started = Date.now();
    const work = join(this.dir, `build-${key}`);
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    try {
      // The El Torito boot image is FAT (the firmware reads nothing else): shim and GRUB, plus 1 MiB
      // for FAT's own tables. mtools writes into it without mounting anything.
      const esp = join(work, 'efiboot.img');
      const kib = Math.ceil((statSync(inputs.shim).size + statSync(inputs.grub).size) / 1024) + 1024;
      await run('mkfs.vfat', ['-C', '-n', 'CORRALEFI', esp, String(kib)]);
      const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
      await run('mmd', ['-i', esp, '::/EFI', '::/EFI/BOOT'], { env });
      await run('mcopy', ['-i', esp, inputs.shim, '::/EFI/BOOT/BOOTX64.EFI'], { env });
      await run('mcopy', ['-i', esp, inputs.grub, '::/EFI/BOOT/grubx64.efi'], { env });
      // A slot for grub.cfg, marked so its place in the ISO can be found after xorriso lays it out.
      const marker = Buffer.from(`# corral grub.cfg slot ${randomBytes(16).toString('hex')}\n`);
      const slot = join(work, 'grub.cfg');
      writeFileSync(slot, fillCfgSlot(marker.toString()));
      const out = join(work, 'corral.iso');
      await run(
        'xorriso',
        [
          ...['-as', 'mkisofs', '-quiet', '-o', out, '-R', '-V', 'CORRAL', '-graft-points'],
          ...['-e', 'efiboot.img', '-no-emul-boot'],
          `efiboot.img=${esp}`,
          `grub/grub.cfg=${slot}`,
          `node/vmlinuz=${inputs.kernel}`,
          `node/initrd.img=${inputs.initrd}`,
          ...(inputs.installerTools ? [`installer/tools.img=${inputs.installerTools}`] : []),
        ],
        { maxBuffer: 1024 * 1024 },
      );
      const at = findMarker(out, marker);
      if (at.length !== 1 || at[0] === undefined) {
        throw new Error(`the grub.cfg slot appears ${at.length} times in the built ISO, not once`);
      }
      // Named by its inputs: a build for older inputs that finishes late cannot replace a newer ISO.
      const path = join(this.dir, `corral-${key}.iso`);
      renameSync(out, path);
      for (const f of readdirSync(this.dir)) {
        // Older ISOs go (a download still streaming one keeps reading it: unlinked, not truncated).
        if (/^corral-[0-9a-f]{16}\.iso$/.test(f) && f !== `corral-${key}.iso` && this.current?.key === key) {
          rmSync(join(this.dir, f), { force: true });
        }
      }
      const iso = { path, size: statSync(path).size, cfgOffset: at[0] };
      this.log.info(
        { bytes: iso.size, ms: Date.now() - started, installerTools: inputs.installerTools !== undefined },
        'HTTP boot ISO built',
      );
      return iso;
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
}

/**
 * Sends the base ISO with `cfg` in its slot. EDK2 asks HEAD, then GET of the whole body (no Range), so
 * a Range header is ignored and the full body sent (RFC 9110 §14.2 allows it).
 */
export async function sendIso(req: Request, res: Response, iso: BaseIso, cfg: Buffer): Promise<void> {
  if (!existsSync(iso.path)) throw new Error(`${iso.path} vanished`);
  res.status(200);
  res.setHeader('Content-Type', HTTP_BOOT_ISO_TYPE);
  res.setHeader('Content-Length', String(iso.size));
  res.setHeader('Cache-Control', 'no-store');
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  async function* body(): AsyncGenerator<Buffer> {
    yield* createReadStream(iso.path, { end: iso.cfgOffset - 1 });
    yield cfg;
    yield* createReadStream(iso.path, { start: iso.cfgOffset + CFG_SLOT_BYTES });
  }
  await pipeline(Readable.from(body()), res);
}
