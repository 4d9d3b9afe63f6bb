/**
 * What a console session showed, kept for replay: one file of raw output per session (escape sequences
 * and all, so a terminal replays it as it was) and one JSON file beside it saying who, which node, when
 * and how much. Output only: what the user typed is not recorded (it echoes back when the node echoes
 * it, but a password prompt does not). Bounded per session (serialConsole.recordBytes) and per node
 * (keepRecordings, oldest deleted first).
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { CorralError } from '../util/errors.js';

export interface RecordingMeta {
  id: string;
  mac: string;
  user: string;
  source: string;
  startedAt: string;
  endedAt: string | null;
  bytes: number;
  /** Output beyond recordBytes was not kept. */
  truncated: boolean;
}

export interface Recorder {
  readonly meta: RecordingMeta;
  write(data: Buffer): void;
  finish(now: Date): void;
}

const ID = /^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$/;

function nodeDir(root: string, mac: string): string {
  return join(root, mac.replace(/:/g, '-'));
}

export class Recordings {
  constructor(
    /** DATA_DIR/serial-console */
    private readonly root: string,
    private readonly maxBytes: number,
    private readonly keep: number,
  ) {}

  start(mac: string, user: string, source: string, now: Date): Recorder {
    const dir = nodeDir(this.root, mac);
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    const stamp = now
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z');
    const meta: RecordingMeta = {
      id: `${stamp}-${randomBytes(4).toString('hex')}`,
      mac,
      user,
      source,
      startedAt: now.toISOString(),
      endedAt: null,
      bytes: 0,
      truncated: false,
    };
    const metaPath = join(dir, `${meta.id}.json`);
    const saveMeta = (): void => writeFileSync(metaPath, JSON.stringify(meta), { mode: 0o640 });
    // Console output can hold secrets shown on the node's screen: readable by the master's group only.
    const fd = openSync(join(dir, `${meta.id}.log`), 'w', 0o640);
    saveMeta();
    this.prune(mac);
    let open = true;
    return {
      meta,
      write: (data) => {
        if (!open) return;
        const room = this.maxBytes - meta.bytes;
        if (room <= 0) {
          meta.truncated = true;
          return;
        }
        const part = data.length > room ? data.subarray(0, room) : data;
        writeSync(fd, part);
        meta.bytes += part.length;
        if (part.length < data.length) meta.truncated = true;
      },
      finish: (at) => {
        if (!open) return;
        open = false;
        closeSync(fd);
        meta.endedAt = at.toISOString();
        saveMeta();
      },
    };
  }

  /** A node's recordings, newest first. */
  list(mac: string): RecordingMeta[] {
    const dir = nodeDir(this.root, mac);
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f.endsWith('.json') && ID.test(f.slice(0, -5)))
      .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as RecordingMeta)
      .sort((a, b) => b.id.localeCompare(a.id));
  }

  /** One recording's output; the id is checked against its pattern, so no path leaves the node's folder. */
  read(mac: string, id: string): { meta: RecordingMeta; output: Buffer } {
    const dir = nodeDir(this.root, mac);
    if (!ID.test(id) || !existsSync(join(dir, `${id}.json`))) {
      throw new CorralError('NOT_FOUND', `no console recording '${id}' for ${mac}`);
    }
    return {
      meta: JSON.parse(readFileSync(join(dir, `${id}.json`), 'utf8')) as RecordingMeta,
      output: readFileSync(join(dir, `${id}.log`)),
    };
  }

  private prune(mac: string): void {
    const dir = nodeDir(this.root, mac);
    for (const old of this.list(mac).slice(this.keep)) {
      rmSync(join(dir, `${old.id}.json`), { force: true });
      rmSync(join(dir, `${old.id}.log`), { force: true });
    }
  }
}
