/**
 * The HA role of this master. Every master starts as a read-only backup that follows its peer. keepalived
 * tells it when it holds the VIP (notify → MASTER); it then asks the witness for the next epoch and, if
 * granted, writes the new epoch into the journal and becomes the primary (the only one that serves DHCP
 * and TFTP and accepts writes). A primary whose backup goes silent needs a witness lease to go on
 * writing without it (async); refused, it fences itself: back to backup, and the track script fails for
 * a while so keepalived hands the VIP over.
 */
import type { FrozenConfig } from '../config.js';
import type { Repos } from '../store/repos.js';
import { CorralError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { AckTracker } from './ack-tracker.js';
import { Follower, type FollowerStatus, type StaleRefusal } from './follower.js';
import { HISTORY_KEY, type EpochStart } from './history.js';
import { WitnessClient, type WitnessResult } from './witness-client.js';
import type { VrrpState } from './keepalived.js';
import { lazyPeer, peerPin } from './peer-http.js';

export type HaRole = 'primary' | 'backup';

/** A backup at most this many changes behind may take synchronous writes again. */
const SYNC_RESTORE_LAG = 50;

export interface HaStatus {
  nodeId: string;
  role: HaRole;
  epoch: number;
  lastSeq: number;
  vrrp: VrrpState;
  mode: 'sync' | 'async';
  configuredMode: 'sync' | 'async';
  peerUrl: string;
  /** Primary only: the backup's acknowledgements. */
  backup: {
    ackedSeq: number;
    lagChanges: number;
    lagSeconds: number;
    lastContactAt: string | null;
    connected: boolean;
  } | null;
  /** Backup only: our replication from the primary. */
  follower: FollowerStatus | null;
  leaseValidMs: number;
  holdDownMs: number;
  lastTransition: { at: string; to: HaRole; reason: string } | null;
}

export interface HaControllerOptions {
  config: FrozenConfig;
  repos: Repos;
  logger: Logger;
  /** Starts or stops what only the primary runs (DHCP, TFTP, config-derived writes). */
  onRole: (role: HaRole) => Promise<void>;
  now?: () => number;
}

export class HaController {
  role: HaRole = 'backup';
  vrrp: VrrpState = 'UNKNOWN';
  readonly nodeId: string;
  readonly acks: AckTracker;
  readonly follower: Follower;
  private readonly witness: WitnessClient | undefined;
  private readonly log: Logger;
  private readonly now: () => number;
  /** Local, conservative end of our witness lease (measured from when we asked). */
  private leaseUntil = 0;
  private degraded = false;
  private holdUntil = 0;
  private busy: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private lastTransition: HaStatus['lastTransition'] = null;
  private closed = false;
  /** Stale primaries our follower refused, for an `ha.stale-primary-refused` event at our promotion. */
  private staleRefusals: StaleRefusal[] = [];

  constructor(private readonly o: HaControllerOptions) {
    const ha = o.config.ha;
    this.nodeId = ha.nodeId ?? o.config.address;
    this.now = o.now ?? Date.now;
    this.log = o.logger.child({ module: 'ha' });
    this.acks = new AckTracker(this.now);
    this.witness = ha.witnessUrl ? new WitnessClient(ha.witnessUrl, ha.token ?? '') : undefined;
    const peerUrl = (ha.peerUrl ?? '').replace(/\/$/, '');
    this.follower = new Follower({
      peerUrl,
      peer: lazyPeer(peerUrl, () => peerPin(o.config)),
      token: ha.token ?? '',
      nodeId: this.nodeId,
      store: o.repos.store,
      logger: o.logger,
      // Short polls: an idle backup still asks twice per follower timeout, so silence means trouble.
      waitMs: Math.floor(ha.followerTimeoutMs / 2),
      // A backup cannot write an event (the write guard refuses): it is recorded when we are promoted.
      onStalePrimary: (refusal) => {
        this.staleRefusals.push(refusal);
        this.staleRefusals = this.staleRefusals.slice(-20);
      },
    });
  }

  get peerUrl(): string {
    return (this.o.config.ha.peerUrl ?? '').replace(/\/$/, '');
  }

  start(): void {
    this.o.repos.store.setWriteGuard(() => this.assertWritable());
    this.follower.start();
    this.timer = setInterval(() => void this.serial(() => this.tick()), 250);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.follower.stop();
    await this.busy.catch(() => undefined);
  }

  /** Role changes run one at a time, in arrival order. */
  private serial(fn: () => Promise<void>): Promise<void> {
    const next = this.busy.then(fn, fn);
    this.busy = next.catch((err: unknown) => this.log.error({ err }, 'HA step failed'));
    return next;
  }

  assertWritable(): void {
    if (this.role !== 'primary') {
      throw new CorralError('NOT_PRIMARY', `this master (${this.nodeId}) is a read-only backup`, {
        primary: this.peerUrl,
      });
    }
  }

  /** The track script's question: may keepalived hold the VIP here? */
  trackOk(): boolean {
    return !this.closed && this.now() >= this.holdUntil;
  }

  onVrrp(state: VrrpState): void {
    this.vrrp = state;
    void this.serial(async () => {
      if (state === 'MASTER' && this.role === 'backup')
        await this.promote('keepalived made this master the VIP holder', false);
      else if (state !== 'MASTER' && this.role === 'primary')
        await this.demote(`keepalived state ${state}`, false);
    });
  }

  /** Operator confirmation (POST /api/v1/ha/promote): promotes without asking the witness. */
  confirmPromotion(actor: string): Promise<void> {
    return this.serial(() => this.promote(`operator ${actor} confirmed the promotion`, true));
  }

  private history(): EpochStart[] {
    return this.o.repos.settings.get<EpochStart[]>(HISTORY_KEY) ?? [];
  }

  private async promote(reason: string, confirmed: boolean): Promise<void> {
    if (this.role === 'primary' || this.closed) return;
    const store = this.o.repos.store;
    const epoch = Math.max(store.epoch(), this.follower.status().primaryEpoch ?? 0) + 1;
    if (!confirmed) {
      if (!this.witness) {
        this.log.warn('holding the VIP, but no witness is configured: promote with POST /api/v1/ha/promote');
        return;
      }
      const answer = await this.witness.promote(this.nodeId, epoch);
      if (!answer.granted) {
        this.holdUntil = this.now() + this.o.config.ha.denyHoldSeconds * 1000;
        this.log.warn({ epoch, reason: answer.reason }, 'witness refused the promotion; giving the VIP back');
        return;
      }
    }
    await this.follower.stop();
    const startSeq = store.lastChangeSeq();
    this.role = 'primary';
    this.degraded = false;
    this.leaseUntil = 0;
    this.acks.reset(startSeq);
    try {
      store.write((journal) => {
        store.setEpochIn(journal, epoch);
        this.o.repos.settings.setIn(journal, HISTORY_KEY, [
          ...this.history(),
          { epoch, startSeq, nodeId: this.nodeId, at: new Date(this.now()).toISOString() },
        ]);
        this.o.repos.events.appendIn(journal, {
          kind: 'ha.promoted',
          severity: 'warning',
          message: `${this.nodeId} became primary in epoch ${epoch} (${reason}; journal at seq ${startSeq})`,
          actor: 'ha',
          data: { nodeId: this.nodeId, epoch, startSeq, reason, confirmed },
        });
        for (const r of this.staleRefusals) {
          this.o.repos.events.appendIn(journal, {
            kind: 'ha.stale-primary-refused',
            severity: 'warning',
            message: `${this.nodeId} (epoch ${r.ownEpoch}) refused to follow ${r.primaryNodeId}, primary in the older epoch ${r.primaryEpoch}, at ${r.at}`,
            actor: 'ha',
            data: { nodeId: this.nodeId, ...r },
          });
        }
      });
      this.staleRefusals = [];
    } catch (err) {
      this.role = 'backup';
      this.follower.start();
      throw err;
    }
    this.transition('primary', reason);
    this.log.warn({ epoch, startSeq }, 'promoted to primary');
    await this.o.onRole('primary');
  }

  private async demote(reason: string, hold: boolean): Promise<void> {
    if (this.role !== 'primary') return;
    this.role = 'backup';
    if (hold) this.holdUntil = this.now() + this.o.config.ha.denyHoldSeconds * 1000;
    this.acks.reset(this.acks.acked);
    this.transition('backup', reason);
    this.log.warn({ reason }, 'now a read-only backup');
    await this.o.onRole('backup');
    if (!this.closed) this.follower.start();
  }

  private transition(to: HaRole, reason: string): void {
    this.lastTransition = { at: new Date(this.now()).toISOString(), to, reason };
  }

  /** A master that learns of a higher epoch stops writing at once. */
  learnEpoch(epoch: number): void {
    if (epoch > this.o.repos.store.epoch() && this.role === 'primary') {
      void this.serial(() => this.demote(`learned the higher epoch ${epoch}`, true));
    }
  }

  private async askLease(): Promise<WitnessResult | undefined> {
    if (!this.witness) return undefined;
    const asked = this.now();
    const answer = await this.witness.lease(this.nodeId, this.o.repos.store.epoch());
    // Conservative: the witness started its clock after we asked; we stop 10% early.
    if (answer.granted) this.leaseUntil = asked + this.o.config.ha.leaseMs * 0.9;
    return answer;
  }

  /** Primary without an acknowledging backup: go on only with a witness lease, else fence. */
  private async needLease(why: string): Promise<boolean> {
    if (!this.witness) {
      if (!this.degraded) this.setDegraded(true, `${why}; no witness configured`);
      return true;
    }
    if (this.degraded && this.leaseUntil - this.now() > this.o.config.ha.leaseMs / 2) return true;
    const answer = await this.askLease();
    if (answer?.granted) {
      if (!this.degraded) this.setDegraded(true, why);
      return true;
    }
    if (answer && !('unreachable' in answer) && answer.state.epoch > this.o.repos.store.epoch()) {
      await this.demote(
        `witness: epoch ${answer.state.epoch} was granted to ${answer.state.holder ?? '?'}`,
        true,
      );
      return false;
    }
    if (this.now() < this.leaseUntil) return true;
    await this.demote(`${why}, and no witness lease (${answer?.reason ?? 'no answer'})`, true);
    return false;
  }

  private setDegraded(on: boolean, why: string): void {
    this.degraded = on;
    this.log.warn({ why }, on ? 'replication degraded to async' : 'synchronous replication restored');
    try {
      this.o.repos.events.append({
        kind: on ? 'ha.replication-degraded' : 'ha.replication-restored',
        severity: on ? 'warning' : 'info',
        message: on
          ? `${this.nodeId} writes without its backup (async): ${why}`
          : `${this.nodeId}: the backup caught up; writes are synchronous again`,
        actor: 'ha',
        data: { nodeId: this.nodeId, epoch: this.o.repos.store.epoch() },
      });
    } catch (err) {
      this.log.warn({ err }, 'could not record the replication event');
    }
  }

  private async tick(): Promise<void> {
    if (this.role !== 'primary' || this.closed) return;
    const ha = this.o.config.ha;
    const fresh = this.acks.fresh(ha.followerTimeoutMs);
    if (!fresh) {
      await this.needLease(`the backup has not asked for changes for ${ha.followerTimeoutMs} ms`);
      return;
    }
    // Back to sync once the backup is close behind: under a steady async load it is never exactly level.
    if (this.degraded && this.o.repos.store.lastChangeSeq() - this.acks.acked <= SYNC_RESTORE_LAG) {
      this.setDegraded(false, 'caught up');
      this.leaseUntil = 0;
      void this.witness?.release(this.nodeId, this.o.repos.store.epoch());
    } else if (this.degraded) {
      await this.needLease('the backup is catching up');
    }
  }

  /**
   * Synchronous replication: resolves when the backup has acknowledged `seq`. On timeout the primary
   * needs a witness lease to answer anyway (async from then on, recorded as an event); without one it
   * fences itself and this rejects with NOT_PRIMARY (the client never saw the write acknowledged).
   */
  async waitForAck(seq: number): Promise<void> {
    if (this.o.config.ha.mode === 'async' || seq <= this.acks.acked) return;
    if (this.degraded && this.now() < this.leaseUntil) return;
    if (this.degraded && !this.witness) return;
    if (await this.acks.wait(seq, this.o.config.ha.syncTimeoutMs)) return;
    let ok = false;
    await this.serial(async () => {
      ok =
        this.role === 'primary' &&
        (await this.needLease(
          `the backup did not acknowledge seq ${seq} in ${this.o.config.ha.syncTimeoutMs} ms`,
        ));
    });
    if (!ok) this.assertWritable();
    if (!ok)
      throw new CorralError(
        'NOT_PRIMARY',
        'this master lost its primary role before the write was replicated',
        { primary: this.peerUrl },
      );
  }

  status(): HaStatus {
    const store = this.o.repos.store;
    const lastSeq = store.lastChangeSeq();
    const primary = this.role === 'primary';
    let lagSeconds = 0;
    if (primary && this.acks.acked < lastSeq) {
      const next = this.o.repos.changes.since(this.acks.acked, 1)[0];
      if (next) lagSeconds = (this.now() - Date.parse(next.at)) / 1000;
    }
    return {
      nodeId: this.nodeId,
      role: this.role,
      epoch: store.epoch(),
      lastSeq,
      vrrp: this.vrrp,
      mode: this.o.config.ha.mode === 'async' || this.degraded ? 'async' : 'sync',
      configuredMode: this.o.config.ha.mode,
      peerUrl: this.peerUrl,
      backup: primary
        ? {
            ackedSeq: this.acks.acked,
            lagChanges: Math.max(0, lastSeq - this.acks.acked),
            lagSeconds,
            lastContactAt: this.acks.lastContactAt ? new Date(this.acks.lastContactAt).toISOString() : null,
            connected: this.acks.fresh(this.o.config.ha.followerTimeoutMs),
          }
        : null,
      follower: primary ? null : this.follower.status(),
      leaseValidMs: Math.max(0, this.leaseUntil - this.now()),
      holdDownMs: Math.max(0, this.holdUntil - this.now()),
      lastTransition: this.lastTransition,
    };
  }
}
