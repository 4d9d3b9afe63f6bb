/**
 * IPMI power control through `ipmitool -I lanplus` (IPMI v2.0 RMCP+). The password travels in the
 * IPMI_PASSWORD environment variable (`-E`), never on the command line where `ps` would show it.
 * Commands (IPMI v2.0 §28): Chassis Control (power on/off/cycle), Get Chassis Status, and the boot
 * flags parameter (§28.13, `chassis bootdev pxe`: network boot on the next power-on only).
 */
import { execFile } from 'node:child_process';
import { CorralError } from '../util/errors.js';
import type { ActionResult, PowerAction, PowerDriver, PowerState } from './power-driver.js';

export interface IpmiTarget {
  host: string;
  port: number;
  username: string;
  password: string;
}

type IpmiCommand = Exclude<PowerAction, 'uefi-http'> | 'status';

/** IPMI's boot flags have no UEFI HTTP device (IPMI v2.0 §28.13, boot device selector). */
export const IPMI_ACTIONS: readonly PowerAction[] = ['on', 'off', 'cycle', 'pxe', 'disk'];

const COMMANDS: Record<IpmiCommand, readonly string[]> = {
  status: ['chassis', 'power', 'status'],
  on: ['chassis', 'power', 'on'],
  off: ['chassis', 'power', 'off'],
  cycle: ['chassis', 'power', 'cycle'],
  pxe: ['chassis', 'bootdev', 'pxe'],
  disk: ['chassis', 'bootdev', 'disk'],
};

/**
 * ipmitool's session arguments for a BMC over IPMI v2.0 (lanplus): the password is not among them, it goes
 * in IPMI_PASSWORD (`-E`), so no `ps` shows it. Shared by power commands and the serial console's SOL.
 */
export function lanplusArgs(
  t: Omit<IpmiTarget, 'password'>,
  cipherSuite: number | undefined,
  extra: readonly string[] = [],
): string[] {
  return [
    '-I',
    'lanplus',
    '-H',
    t.host,
    '-p',
    String(t.port),
    '-U',
    t.username,
    '-E',
    ...extra,
    ...(cipherSuite !== undefined ? ['-C', String(cipherSuite)] : []),
  ];
}

/** ipmitool's arguments for one command; the password is not among them (see `-E`). */
export function ipmitoolArgs(
  t: Omit<IpmiTarget, 'password'>,
  command: IpmiCommand,
  cipherSuite?: number,
): string[] {
  // -R/-N: two retries at two-second timeouts bound a dead BMC to about six seconds per call.
  return [...lanplusArgs(t, cipherSuite, ['-R', '2', '-N', '2']), ...COMMANDS[command]];
}

/** "Chassis Power is on" → on; anything else is not an answer. */
export function parsePowerStatus(stdout: string): PowerState | undefined {
  const m = /Chassis Power is (on|off)/i.exec(stdout);
  return m ? (m[1]!.toLowerCase() as PowerState) : undefined;
}

/** ipmitool's useful last line: it prints a harmless cipher-suite warning first on many BMCs. */
export function ipmitoolError(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/Unable to Get Channel Cipher Suites/i.test(l));
  return lines.at(-1) ?? 'ipmitool failed without a message';
}

export type RunIpmitool = (
  bin: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs: number,
) => Promise<{ code: number; stdout: string; stderr: string }>;

export const runIpmitool: RunIpmitool = (bin, args, env, timeoutMs) =>
  new Promise((resolve, reject) => {
    execFile(
      bin,
      args,
      { env: { ...process.env, ...env }, timeout: timeoutMs, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
          return reject(
            new CorralError('POWER_FAILED', `${bin} is not installed (apt-get install ipmitool)`),
          );
        }
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({
          code,
          stdout,
          stderr: err?.killed ? `${stderr}\ntimed out after ${timeoutMs} ms` : stderr,
        });
      },
    );
  });

export interface IpmiOptions {
  bin: string;
  timeoutMs: number;
  cipherSuite?: number | undefined;
  run?: RunIpmitool;
}

export function ipmiDriver(target: IpmiTarget, options: IpmiOptions): PowerDriver {
  const run = options.run ?? runIpmitool;
  const call = async (command: IpmiCommand): Promise<string> => {
    const r = await run(
      options.bin,
      ipmitoolArgs(target, command, options.cipherSuite),
      { IPMI_PASSWORD: target.password },
      options.timeoutMs,
    );
    if (r.code !== 0) {
      throw new CorralError('POWER_FAILED', `BMC ${target.host}:${target.port}: ${ipmitoolError(r.stderr)}`);
    }
    return r.stdout;
  };
  const status = async (): Promise<PowerState> => {
    const out = await call('status');
    const state = parsePowerStatus(out);
    if (!state)
      throw new CorralError(
        'POWER_FAILED',
        `BMC ${target.host}: unexpected answer '${out.trim().slice(0, 80)}'`,
      );
    return state;
  };
  return {
    kind: 'ipmi',
    actions: IPMI_ACTIONS,
    status,
    async act(action: PowerAction): Promise<ActionResult> {
      if (action === 'uefi-http') {
        throw new CorralError('POWER_UNSUPPORTED', `IPMI ${target.host} has no UEFI HTTP boot device`);
      }
      // A power cycle of a chassis that is off does nothing on many BMCs (IPMI v2.0 §28.3): power it on.
      if (action === 'cycle' && (await status()) === 'off') {
        await call('on');
        return { message: `powered on through IPMI ${target.host} (it was off)`, manual: false };
      }
      await call(action);
      const done = {
        on: 'powered on',
        off: 'powered off',
        cycle: 'power-cycled',
        pxe: 'set to boot from the network (PXE) next time',
        disk: 'set to boot from its disk next time',
      }[action];
      return { message: `${done} through IPMI ${target.host}`, manual: false };
    },
  };
}
