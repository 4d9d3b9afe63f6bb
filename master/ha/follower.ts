/**
 * The backup's side of replication: long-polls the primary's feed with `since` = the last sequence it
 * has applied (which is also its acknowledgement), applies each batch in order in one transaction, and
 * discards its own journal tail when the primary says it diverged (a returning old primary).
 */
import type { ReplicatedChange, Store } from '../store/db.js';
import type { Logger } from '../util/logger.js';
import type { EpochStart } from './history.js';
import type { PeerHttp } from './peer-http.js';

export interface FeedResponse {
  epoch: number;
  nodeId: string;
  lastSeq: number;
  history: EpochStart[];
  /** Discard your journal after this sequence before following (you diverged). */
  truncateAfter?: number;
  changes: ReplicatedChange[];
}

export interface FollowerOptions {
  peerUrl: string;
  /** The pinned client for peerUrl (master/ha/peer-http.ts). */
  peer: () => PeerHttp;
  token: string;
  nodeId: string;
  store: Store;
  logger: Logger;
  /** Long-poll duration asked of the primary. */
  waitMs?: number;
  /** A primary in a higher epoch than ours answered (we learn it; the controller may fence). */
  onPrimaryEpoch?: (epoch: number) => void;
  /** A primary in a lower epoch than ours answered: we did not follow it (called once per its epoch). */
  onStalePrimary?: (refusal: StaleRefusal) => void;
}

export interface StaleRefusal {
  primaryNodeId: string;
  primaryEpoch: number;
  ownEpoch: number;
  at: string;
}

export interface FollowerStatus {
  peerUrl: string;
  connected: boolean;
  appliedSeq: number;
  primaryLastSeq: number;
  primaryEpoch: number | null;
  lagChanges: number;
  lagSeconds: number;
  lastContactAt: string | null;
  lastError: string | null;
  discarded: number;
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });

export class Follower {
  private abort = new AbortController();
  private loop: Promise<void> | undefined;
  private primaryLastSeq = 0;
  private primaryEpoch: number | null = null;
  private lastContactAt = 0;
  /** When we first saw the primary ahead of us (lag in seconds counts from there). */
  private behindSince = 0;
  private lastError: string | null = null;
  private discarded = 0;
  /** "node@epoch" of the last stale primary refused, so a long refusal is reported once. */
  private staleSeen = '';
  private readonly log: Logger;

  constructor(private readonly o: FollowerOptions) {
    this.log = o.logger.child({ module: 'ha-follower' });
  }

  get running(): boolean {
    return this.loop !== undefined;
  }

  start(): void {
    if (this.loop) return;
    this.abort = new AbortController();
    const signal = this.abort.signal;
    this.loop = this.run(signal).finally(() => {
      this.loop = undefined;
    });
    this.log.info({ peer: this.o.peerUrl }, 'following the primary');
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  private headers(): Record<string, string> {
    return { authorization: `Bearer ${this.o.token}`, 'content-type': 'application/json' };
  }

  private async run(signal: AbortSignal): Promise<void> {
    const waitMs = this.o.waitMs ?? 15_000;
    while (!signal.aborted) {
      try {
        const since = this.o.store.lastChangeSeq();
        const epoch = this.o.store.epoch();
        const path = `/api/v1/ha/feed?since=${since}&epoch=${epoch}&node=${encodeURIComponent(this.o.nodeId)}&wait=${waitMs}`;
        const res = await this.o.peer().fetch(path, {
          headers: this.headers(),
          signal: AbortSignal.any([signal, AbortSignal.timeout(waitMs + 5000)]),
        });
        if (res.status === 503) {
          // The peer is not primary (yet): both masters start as backups until keepalived elects one.
          await res.body?.cancel();
          this.lastContactAt = Date.now();
          this.lastError = 'peer is not primary';
          await sleep(300, signal);
          continue;
        }
        if (!res.ok) throw new Error(`feed answered HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
        const feed = (await res.json()) as FeedResponse;
        this.lastContactAt = Date.now();
        this.primaryLastSeq = feed.lastSeq;
        this.primaryEpoch = feed.epoch;
        if (feed.epoch < epoch) {
          // Our journal already holds a later epoch than this primary's: its changes (or its
          // truncateAfter) would graft writes of a fenced or returning old primary onto ours.
          this.refuseStale(feed, epoch);
          await sleep(1000, signal);
          continue;
        }
        this.lastError = null;
        this.staleSeen = '';
        if (feed.epoch > epoch) this.o.onPrimaryEpoch?.(feed.epoch);
        if (feed.truncateAfter !== undefined) {
          await this.discard(feed.truncateAfter, epoch);
          continue;
        }
        if (feed.changes.length) this.o.store.applyReplicated(feed.changes);
        const applied = this.o.store.lastChangeSeq();
        if (applied >= feed.lastSeq) this.behindSince = 0;
        else if (!this.behindSince) this.behindSince = Date.now();
      } catch (err) {
        if (signal.aborted) break;
        this.lastError = (err as Error).message;
        this.log.debug({ err: this.lastError }, 'feed request failed; retrying');
        await sleep(300, signal);
      }
    }
  }

  private refuseStale(feed: FeedResponse, ownEpoch: number): void {
    this.lastError = `peer ${feed.nodeId} is primary in epoch ${feed.epoch}, older than ours (${ownEpoch}): not following it`;
    const key = `${feed.nodeId}@${feed.epoch}`;
    if (key === this.staleSeen) return;
    this.staleSeen = key;
    this.log.warn({ primary: feed.nodeId, primaryEpoch: feed.epoch, ownEpoch }, this.lastError);
    this.o.onStalePrimary?.({
      primaryNodeId: feed.nodeId,
      primaryEpoch: feed.epoch,
      ownEpoch,
      at: new Date().toISOString(),
    });
  }

  /** Rolls our unreplicated tail back, keeps it in ha_discarded, and tells the primary (which records an event). */
  private async discard(after: number, oldEpoch: number): Promise<void> {
    const tail = this.o.store.discardAfter(after);
    this.discarded += tail.length;
    const summary = {
      nodeId: this.o.nodeId,
      epoch: oldEpoch,
      count: tail.length,
      afterSeq: after,
      lastSeq: tail.at(-1)?.seq ?? after,
      entities: [...new Set(tail.map((c) => `${c.entity}:${c.key}`))].slice(0, 50),
    };
    this.log.warn(summary, 'discarded an unreplicated journal tail (kept in table ha_discarded)');
    try {
      await this.o.peer().fetch('/api/v1/ha/discarded', {
        method: 'POST',
        headers: this.headers(),
        body: JSON.stringify(summary),
        signal: AbortSignal.timeout(3000),
      });
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not report the discarded tail to the primary');
    }
  }

  status(): FollowerStatus {
    const applied = this.o.store.lastChangeSeq();
    const lag = Math.max(0, this.primaryLastSeq - applied);
    return {
      peerUrl: this.o.peerUrl,
      connected:
        this.lastContactAt > 0 && Date.now() - this.lastContactAt < 20_000 && this.lastError === null,
      appliedSeq: applied,
      primaryLastSeq: this.primaryLastSeq,
      primaryEpoch: this.primaryEpoch,
      lagChanges: lag,
      lagSeconds: lag && this.behindSince ? (Date.now() - this.behindSince) / 1000 : 0,
      lastContactAt: this.lastContactAt ? new Date(this.lastContactAt).toISOString() : null,
      lastError: this.lastError,
      discarded: this.discarded,
    };
  }
}
