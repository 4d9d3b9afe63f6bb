/**
 * Runs the node script over SSH with the master's key and the node's pinned host key (remote/host-keys.ts),
 * as `corral node exec` does, but with raw byte streams: the archive comes back on stdout (a snapshot) or
 * goes out on stdin (a restore), with SSH's own flow control (ssh2 channel windows) as back-pressure, so
 * neither side holds an archive in memory.
 */
import type { Duplex, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { NodeSSH } from 'node-ssh';
import { CorralError } from '../util/errors.js';
import { lineSplitter } from '../remote/exec.js';
import { pinnedConnect, type HostKeyPins } from '../remote/host-keys.js';

/** The part of ssh2's Client and ClientChannel used here (ssh2 ships no type declarations of its own). */
interface ExecChannel extends Duplex {
  stderr: Readable;
  close(): void;
}
interface ExecConnection {
  exec(command: string, cb: (err: Error | undefined, channel: ExecChannel) => void): void;
}

export interface SshSettings {
  user: string;
  port: number;
  privateKeyPath: string;
  connectTimeoutMs: number;
  hostKeys: HostKeyPins;
  onHostKeyRefused?: (node: { mac: string; name: string }, reason: string) => void;
}

export interface NodeRun {
  node: { mac: string; name: string; host: string };
  command: string;
  /** The first stdin line (the database password, or empty). */
  secret: string;
  /** What follows on stdin (a restore's archive). */
  input?: Readable;
  /** Where stdout goes (a snapshot's archive); discarded when absent. */
  output?: Writable;
  /** Each stderr line. */
  onStderr: (line: string) => void;
  timeoutMs: number;
}

export interface NodeRunResult {
  code: number | null;
  signal: string | null;
}

export async function runNodeScript(ssh: SshSettings, run: NodeRun): Promise<NodeRunResult> {
  const { node } = run;
  if (!node.host) {
    throw new CorralError('DATA_SNAPSHOT_FAILED', `node ${node.name} has no IP address recorded`);
  }
  const client = new NodeSSH();
  const pin = pinnedConnect(ssh.hostKeys, node);
  try {
    try {
      await client.connect({
        host: node.host,
        port: ssh.port,
        username: ssh.user,
        privateKeyPath: ssh.privateKeyPath,
        readyTimeout: ssh.connectTimeoutMs,
        hostVerifier: pin.hostVerifier,
      });
    } catch (err) {
      const verdict = pin.verdict();
      if (verdict && !verdict.ok) {
        const reason = verdict.reason ?? 'SSH host key refused';
        ssh.onHostKeyRefused?.(node, reason);
        throw new CorralError('DATA_SNAPSHOT_FAILED', reason);
      }
      throw new CorralError(
        'DATA_SNAPSHOT_FAILED',
        `cannot reach ${node.name} (${node.host}:${ssh.port}) over SSH: ${(err as Error).message.split('\n')[0]}`,
      );
    }
    const connection = client.connection as unknown as ExecConnection | null;
    if (!connection) throw new CorralError('DATA_SNAPSHOT_FAILED', 'SSH connection closed');
    const channel = await new Promise<ExecChannel>((resolve, reject) =>
      connection.exec(run.command, (err, ch) => (err ? reject(err) : resolve(ch))),
    );
    const errLines = lineSplitter(run.onStderr);
    channel.stderr.on('data', (c: Buffer) => errLines.push(c));
    const exited = new Promise<NodeRunResult>((resolve) => {
      let result: NodeRunResult = { code: null, signal: null };
      channel.on('exit', (code: number | null, signal?: string) => {
        result = { code: code ?? null, signal: signal ?? null };
      });
      channel.on('close', () => {
        errLines.flush();
        resolve(result);
      });
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        channel.close();
        reject(
          new CorralError(
            'DATA_SNAPSHOT_FAILED',
            `${node.name}: still running after ${Math.round(run.timeoutMs / 1000)} s; stopped`,
          ),
        );
      }, run.timeoutMs);
    });
    try {
      channel.write(`${run.secret.replace(/\n/g, '')}\n`);
      const sending = run.input ? pipeline(run.input, channel) : Promise.resolve(void channel.end());
      const receiving = run.output ? pipeline(channel, run.output) : Promise.resolve(void channel.resume());
      // A pipeline rejects when the node script exits early (its stdin closes): the exit status says why.
      const streams = Promise.allSettled([sending, receiving]);
      const result = await Promise.race([exited, timeout]);
      const settled = await Promise.race([streams, timeout]);
      const failed = settled.find((s) => s.status === 'rejected');
      if (failed && result.code === 0) throw (failed as PromiseRejectedResult).reason;
      return result;
    } finally {
      clearTimeout(timer);
    }
  } finally {
    client.dispose();
  }
}
