/**
 * A node's serial line, wherever it ends: a Unix socket (a lab VM's serial port, relayed by `corral lab`;
 * any console server that offers one) or the BMC's serial-over-LAN through `ipmitool -I lanplus ... sol
 * activate` (IPMI v2.0 §15 and §24). Both are plain byte streams: a serial line has no window size, no
 * signals and no end-of-file of its own, so Ctrl-C is the byte 0x03 that the node's tty turns into SIGINT.
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { CorralError } from '../util/errors.js';
import { lanplusArgs } from '../remote/ipmi.js';

/** Where a node's serial line is, as the page shows it before connecting. */
export type LineSource = { kind: 'socket'; path: string } | { kind: 'sol'; host: string; port: number };

export interface SerialLine {
  /** What the line is, for the page and the audit log ("socket /x.sock", "sol 10.0.0.5:623"). */
  readonly description: string;
  write(data: Buffer): void;
  onData(listener: (data: Buffer) => void): void;
  /** Called once, when the far end goes away (VM stopped, ipmitool exited) or `close` was called. */
  onClose(listener: (reason: string) => void): void;
  close(): void;
}

/** A Unix stream socket carrying the raw line (QEMU `-serial unix:`, the lab's relay, ser2net-like servers). */
export function socketLine(path: string): Promise<SerialLine> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    const closers: ((reason: string) => void)[] = [];
    let closed = false;
    const end = (reason: string): void => {
      if (closed) return;
      closed = true;
      sock.destroy();
      for (const c of closers) c(reason);
    };
    const refused = (err: Error): void =>
      reject(new CorralError('SERIAL_CONSOLE_UNAVAILABLE', `cannot open ${path}: ${err.message}`));
    sock.once('error', refused);
    sock.once('connect', () => {
      sock.off('error', refused);
      sock.on('error', (err) => end(err.message));
      sock.on('close', () => end('the serial line closed'));
      resolve({
        description: `socket ${path}`,
        write: (d) => {
          if (!closed) sock.write(d);
        },
        onData: (l) => sock.on('data', l),
        onClose: (l) => closers.push(l),
        close: () => end('closed'),
      });
    });
  });
}

export interface SolTarget {
  host: string;
  port: number;
  username: string;
  password: string;
}

export interface SolOptions {
  bin: string;
  cipherSuite?: number | undefined;
}

/** ipmitool's arguments for a SOL session; the password goes in IPMI_PASSWORD (`-E`), never in argv. */
export function solArgs(t: Omit<SolTarget, 'password'>, o: Pick<SolOptions, 'cipherSuite'>): string[] {
  return [...lanplusArgs(t, o.cipherSuite), 'sol', 'activate'];
}

/**
 * SOL through ipmitool with pipes, not a pty: ipmitool then passes bytes through unchanged (it sets raw
 * mode only on a terminal), so 0x03 reaches the BMC as Ctrl-C. Its escape `~.` at the start of a line
 * still ends the session, as on a terminal. A BMC allows one SOL session: an older one (another tool,
 * a crashed master) is told to end first with `sol deactivate`, whose failure (none active) is expected.
 */
/**
 * Input to ipmitool goes one byte at a time, SOL_BYTE_MS apart. ipmitool puts everything it read into
 * one SOL packet and does not resend what the BMC did not accept (a partial ACK, IPMI v2.0 §15.9): with
 * OpenIPMI's ipmi_sim only the first byte of a multi-byte packet arrived (seen here: "echo 42" typed at
 * once became "e"). Typing is one byte per key anyway; a paste of 1 KiB takes about 10 s.
 */
const SOL_BYTE_MS = 10;
/** Input waiting for the line beyond this is dropped (a runaway paste), not queued without bound. */
const SOL_QUEUE_MAX = 8192;

export async function solLine(target: SolTarget, o: SolOptions): Promise<SerialLine> {
  const env = { ...process.env, IPMI_PASSWORD: target.password };
  const base = solArgs(target, o);
  await new Promise<void>((resolve) => {
    const d = spawn(o.bin, [...base.slice(0, -1), 'deactivate'], { env, stdio: 'ignore' });
    const timer = setTimeout(() => d.kill('SIGKILL'), 10_000);
    d.once('error', () => resolve());
    d.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  const child = spawn(o.bin, base, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const closers: ((reason: string) => void)[] = [];
  let closed = false;
  let stderr = '';
  const end = (reason: string): void => {
    if (closed) return;
    closed = true;
    clearInterval(pump);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    for (const c of closers) c(reason);
  };
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-2000);
  });
  child.stdin.on('error', () => undefined);
  const queue: number[] = [];
  let pump: NodeJS.Timeout | undefined;
  const feed = (): void => {
    const byte = queue.shift();
    if (byte === undefined || closed) {
      clearInterval(pump);
      pump = undefined;
      return;
    }
    child.stdin.write(Buffer.of(byte));
  };
  await new Promise<void>((resolve, reject) => {
    child.once('error', (err) =>
      reject(
        new CorralError(
          'SERIAL_CONSOLE_UNAVAILABLE',
          (err as NodeJS.ErrnoException).code === 'ENOENT'
            ? `${o.bin} is not installed (apt-get install ipmitool)`
            : err.message,
        ),
      ),
    );
    child.once('spawn', () => resolve());
  });
  child.once('exit', (code) =>
    end(
      `ipmitool exited (${code ?? 'signal'})${stderr.trim() ? `: ${stderr.trim().split('\n').at(-1)}` : ''}`,
    ),
  );
  return {
    description: `sol ${target.host}:${target.port}`,
    write: (d) => {
      if (closed) return;
      for (const b of d.subarray(0, Math.max(0, SOL_QUEUE_MAX - queue.length))) queue.push(b);
      pump ??= setInterval(feed, SOL_BYTE_MS);
    },
    onData: (l) => child.stdout.on('data', l),
    onClose: (l) => closers.push(l),
    close: () => end('closed'),
  };
}
