/** The masters' side of the witness protocol (see witness.ts). Every call is bounded by a timeout. */
import type { WitnessAnswer } from './witness-state.js';
import { witnessCredential } from './witness.js';

export type WitnessResult = WitnessAnswer | { granted: false; reason: string; unreachable: true };

export class WitnessClient {
  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly timeoutMs = 1000,
  ) {}

  private async post(path: string, nodeId: string, epoch: number): Promise<WitnessResult> {
    try {
      const res = await fetch(`${this.url.replace(/\/$/, '')}${path}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${witnessCredential(this.token)}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ nodeId, epoch }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      if (res.status !== 200 && res.status !== 409) {
        return { granted: false, reason: `witness answered HTTP ${res.status}`, unreachable: true };
      }
      return (await res.json()) as WitnessAnswer;
    } catch (err) {
      return { granted: false, reason: `witness unreachable: ${(err as Error).message}`, unreachable: true };
    }
  }

  promote(nodeId: string, epoch: number): Promise<WitnessResult> {
    return this.post('/promote', nodeId, epoch);
  }

  lease(nodeId: string, epoch: number): Promise<WitnessResult> {
    return this.post('/lease', nodeId, epoch);
  }

  release(nodeId: string, epoch: number): Promise<WitnessResult> {
    return this.post('/release', nodeId, epoch);
  }
}
