/**
 * One serial line per node, shared by everyone who has its console open: the line is opened for the
 * first viewer and closed after the last. Exactly one viewer writes (the first to come; when the writer
 * leaves, the longest-waiting watcher); the others watch read-only, and an admin may take the line over.
 * Every viewer's session is recorded on its own (what that viewer saw) for replay.
 *
 * Frames: binary = terminal bytes (both ways); text = JSON control messages (see `Control`).
 */
import type { Role } from '../store/users.js';
import type { Logger } from '../util/logger.js';
import type { SerialLine } from './lines.js';
import type { Recorder } from './recordings.js';

/** Control messages to the browser. */
export type ServerControl =
  | { type: 'hello'; role: 'writer' | 'watcher'; writer: string | null; source: string; recording: string }
  | { type: 'role'; role: 'writer' | 'watcher'; writer: string | null }
  | { type: 'size'; cols: number; rows: number }
  | { type: 'closed'; reason: string };

/** Control messages from the browser. */
export type ClientControl = { type: 'resize'; cols: number; rows: number } | { type: 'takeover' };

export interface Viewer {
  user: string;
  role: Role;
  send(data: Buffer | ServerControl): void;
  /** Ends the viewer's connection (the line went away). */
  end(reason: string): void;
}

interface Joined {
  viewer: Viewer;
  recorder: Recorder;
}

interface NodeConsole {
  line: SerialLine;
  viewers: Joined[];
  writer: Joined | undefined;
}

/** Bounds on a terminal size a browser may announce: beyond them it is not a screen. */
const MAX_COLS = 1000;
const MAX_ROWS = 500;

/** A client control frame, or undefined for anything else (ignored: the client is not trusted). */
export function parseControl(text: string): ClientControl | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!v || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  if (o['type'] === 'takeover') return { type: 'takeover' };
  const { cols, rows } = o;
  if (
    o['type'] === 'resize' &&
    Number.isInteger(cols) &&
    Number.isInteger(rows) &&
    (cols as number) >= 1 &&
    (cols as number) <= MAX_COLS &&
    (rows as number) >= 1 &&
    (rows as number) <= MAX_ROWS
  ) {
    return { type: 'resize', cols: cols as number, rows: rows as number };
  }
  return undefined;
}

export interface HubOptions {
  open(mac: string): Promise<SerialLine>;
  logger: Logger;
}

export class ConsoleHub {
  private readonly consoles = new Map<string, NodeConsole>();
  private readonly opening = new Map<string, Promise<NodeConsole>>();
  private readonly log: Logger;

  constructor(private readonly o: HubOptions) {
    this.log = o.logger.child({ module: 'serial-console' });
  }

  /** Number of open lines and viewers (health). */
  stats(): { lines: number; viewers: number } {
    let viewers = 0;
    for (const c of this.consoles.values()) viewers += c.viewers.length;
    return { lines: this.consoles.size, viewers };
  }

  /** The line's description (for the recording) once it is open; throws when it cannot be opened. */
  async attach(mac: string): Promise<string> {
    return (await this.lineOf(mac)).line.description;
  }

  /**
   * Adds a viewer to an open line (call `attach` first). Returns the viewer's handlers: input bytes,
   * control frames and leaving.
   */
  join(
    mac: string,
    viewer: Viewer,
    recorder: Recorder,
  ): { input(data: Buffer): void; control(c: ClientControl): void; leave(): void } {
    const c = this.consoles.get(mac);
    if (!c) throw new Error(`serial line of ${mac} is not open`);
    const joined: Joined = { viewer, recorder };
    c.viewers.push(joined);
    if (!c.writer) c.writer = joined;
    viewer.send({
      type: 'hello',
      role: c.writer === joined ? 'writer' : 'watcher',
      writer: c.writer.viewer.user,
      source: c.line.description,
      recording: recorder.meta.id,
    });
    this.log.info({ mac, user: viewer.user, writer: c.writer === joined }, 'console viewer joined');
    return {
      // Only the writer's bytes reach the line; a watcher's are dropped (its page does not send them).
      input: (data) => {
        if (c.writer === joined) c.line.write(data);
      },
      control: (msg) => {
        if (msg.type === 'takeover') {
          if (viewer.role !== 'admin' || c.writer === joined) return;
          this.setWriter(mac, c, joined);
        } else if (c.writer === joined) {
          // A serial line has no window size to set (no TIOCSWINSZ over RS-232 or SOL): the watchers are
          // told, and the page offers to type `stty rows R cols C` so the node's shell knows it.
          for (const v of c.viewers)
            if (v !== joined) v.viewer.send({ type: 'size', cols: msg.cols, rows: msg.rows });
        }
      },
      leave: () => this.leave(mac, c, joined),
    };
  }

  /** Ends every session and line (master stopping). */
  closeAll(): void {
    for (const [mac, c] of this.consoles) this.drop(mac, c, 'the master is stopping');
  }

  private setWriter(mac: string, c: NodeConsole, next: Joined | undefined): void {
    c.writer = next;
    const writer = next?.viewer.user ?? null;
    for (const v of c.viewers)
      v.viewer.send({ type: 'role', role: v === next ? 'writer' : 'watcher', writer });
    this.log.info({ mac, writer }, 'console writer changed');
  }

  private leave(mac: string, c: NodeConsole, joined: Joined): void {
    const i = c.viewers.indexOf(joined);
    if (i < 0) return;
    c.viewers.splice(i, 1);
    joined.recorder.finish(new Date());
    if (!c.viewers.length) {
      this.consoles.delete(mac);
      c.line.close();
      this.log.info({ mac }, 'serial line closed (no viewer left)');
      return;
    }
    if (c.writer === joined) this.setWriter(mac, c, c.viewers[0]);
  }

  private drop(mac: string, c: NodeConsole, reason: string): void {
    if (this.consoles.get(mac) === c) this.consoles.delete(mac);
    for (const v of c.viewers.splice(0)) {
      v.recorder.finish(new Date());
      v.viewer.send({ type: 'closed', reason });
      v.viewer.end(reason);
    }
    c.line.close();
  }

  private lineOf(mac: string): Promise<NodeConsole> {
    const open = this.consoles.get(mac);
    if (open) return Promise.resolve(open);
    const pending = this.opening.get(mac);
    if (pending) return pending;
    const p = this.o
      .open(mac)
      .then((line) => {
        const c: NodeConsole = { line, viewers: [], writer: undefined };
        this.consoles.set(mac, c);
        line.onData((data) => {
          for (const v of c.viewers) {
            v.recorder.write(data);
            v.viewer.send(data);
          }
        });
        line.onClose((reason) => {
          this.log.info({ mac, reason }, 'serial line ended');
          this.drop(mac, c, reason);
        });
        this.log.info({ mac, line: line.description }, 'serial line opened');
        return c;
      })
      .finally(() => this.opening.delete(mac));
    this.opening.set(mac, p);
    return p;
  }
}
