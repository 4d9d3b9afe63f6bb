/**
 * Epoch history: each promotion appends `{epoch, startSeq}` (the journal's last sequence before the
 * new primary's first write). Kept in the journaled setting 'ha.history', so every master learns it.
 * Pure functions here; the controller reads and writes the setting.
 */
export interface EpochStart {
  epoch: number;
  /** Changes with seq <= startSeq came from earlier epochs. */
  startSeq: number;
  nodeId: string;
  at: string;
}

export const HISTORY_KEY = 'ha.history';

/**
 * Where a follower's journal must be cut before it can follow a primary: a follower last in epoch
 * `followerEpoch` shares the primary's journal only up to the start of the first later epoch.
 * Returns the sequence to discard after, or undefined when the follower's journal is a prefix.
 */
export function divergencePoint(
  history: readonly EpochStart[],
  primaryLastSeq: number,
  followerEpoch: number,
  followerSeq: number,
): number | undefined {
  const later = history.filter((h) => h.epoch > followerEpoch).map((h) => h.startSeq);
  const limit = Math.min(primaryLastSeq, ...later);
  return followerSeq > limit ? limit : undefined;
}
