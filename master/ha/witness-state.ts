/**
 * The witness's decision, as a pure state transition. At most one master is granted each epoch, and a
 * promotion is refused while another master holds a lease (a primary that writes without its backup).
 */
export interface WitnessState {
  epoch: number;
  holder: string | null;
  /** Epoch-millis until which `holder` may write without its backup; 0 = no lease. */
  leaseUntil: number;
}

export type WitnessAnswer =
  { granted: true; state: WitnessState } | { granted: false; reason: string; state: WitnessState };

export function decidePromote(s: WitnessState, nodeId: string, epoch: number, now: number): WitnessAnswer {
  if (epoch <= s.epoch) {
    return { granted: false, reason: `epoch ${epoch} is not above the granted epoch ${s.epoch}`, state: s };
  }
  if (s.holder && s.holder !== nodeId && s.leaseUntil > now) {
    return {
      granted: false,
      reason: `${s.holder} holds a lease for epoch ${s.epoch} for ${s.leaseUntil - now} ms more`,
      state: s,
    };
  }
  return { granted: true, state: { epoch, holder: nodeId, leaseUntil: 0 } };
}

export function decideLease(
  s: WitnessState,
  nodeId: string,
  epoch: number,
  now: number,
  leaseMs: number,
): WitnessAnswer {
  if (epoch !== s.epoch || s.holder !== nodeId) {
    return {
      granted: false,
      reason: `epoch ${epoch} of ${nodeId} is not current (epoch ${s.epoch} held by ${s.holder ?? 'nobody'})`,
      state: s,
    };
  }
  return { granted: true, state: { ...s, leaseUntil: now + leaseMs } };
}

export function decideRelease(s: WitnessState, nodeId: string, epoch: number): WitnessState {
  return epoch === s.epoch && s.holder === nodeId ? { ...s, leaseUntil: 0 } : s;
}
