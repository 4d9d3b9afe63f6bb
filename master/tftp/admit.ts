/**
 * TFTP admission: whether a request starts a transfer. A pure function of the request and what the
 * server holds, as DHCP has decide(); the socket server only carries out the verdict.
 *
 * Per-client limits (issue 14, finding 5): without them one address can take every slot (256 read
 * requests from 256 source ports), and every real node then hears "Server busy". A PXE ROM or iPXE reads
 * one file at a time, so a handful of concurrent transfers per address is plenty.
 */
import { ErrorCode } from './codec.js';

export interface RequestFacts {
  op: 'RRQ' | 'WRQ';
  mode: string;
  filename: string;
  /** The client's IP address (its source port is not part of the per-client limit). */
  clientAddress: string;
}

export interface AdmissionState {
  /**
   * The session on the same client endpoint (address and port), if one is open; `ageMs` since its
   * request was accepted.
   */
  existing: { file: string; heardFromClient: boolean; ageMs: number } | null;
  /** Sessions open on the whole server, including `existing`. */
  active: number;
  /** Sessions open for this client address (any port), including `existing`. */
  activeForClient: number;
}

export interface AdmissionLimits {
  maxTransfers: number;
  maxPerClient: number;
}

export type RefusalReason = 'write' | 'mode' | 'client-limit';

export type Admission =
  /** Start a transfer; `supersede`: end the endpoint's previous one first (the client restarted). */
  | { verdict: 'accept'; supersede: boolean }
  /** Say nothing: the request repeats one already being served. */
  | { verdict: 'ignore'; why: string }
  /**
   * Say nothing yet: every slot is taken. The client's own retransmission of its RRQ (RFC 1350 section 2)
   * asks again later, so a boot storm queues on the clients' timers instead of failing (issue 19).
   */
  | { verdict: 'defer'; detail: string }
  /** Answer with an ERROR packet: `message` goes to the client, `detail` to our log. */
  | { verdict: 'refuse'; reason: RefusalReason; code: number; message: string; detail: string };

/**
 * A copy of an RRQ read this long after its transfer started is still a copy, not a restart. A client
 * retransmits its RRQ until it hears the first reply (iPXE: at 1/4, 3/4, 1 3/4, 3 3/4, 7 3/4 s), and the
 * copies arrive on port 69 while its ACKs arrive on the transfer's own socket: two sockets, read in either
 * order. So under load (the boot storm, issue 19) a copy is read after the first ACK; taken for a restart it
 * superseded a running transfer with a new OACK the client, past block 1, ignored, and 19 of 250 machines
 * failed. A client that really restarts on the same port does so after its own timeout gives up (iPXE:
 * 15.75 s of silence).
 */
export const DUPLICATE_RRQ_WINDOW_MS = 10_000;

const refuse = (reason: RefusalReason, code: number, message: string, detail: string): Admission => ({
  verdict: 'refuse',
  reason,
  code,
  message,
  detail,
});

export function admit(req: RequestFacts, state: AdmissionState, limits: AdmissionLimits): Admission {
  // Corral's boot root is read-only over the network.
  if (req.op === 'WRQ')
    return refuse('write', ErrorCode.ACCESS_VIOLATION, 'Write requests are not accepted', 'WRQ');
  let supersede = false;
  if (state.existing) {
    // A client that heard nothing yet retransmits its RRQ (RFC 1350 section 2); the transfer already
    // retransmits on its own timer, and a second one would only draw ERROR 5 from the client.
    if (state.existing.file === req.filename && !state.existing.heardFromClient) {
      return { verdict: 'ignore', why: 'retransmitted request' };
    }
    if (state.existing.file === req.filename && state.existing.ageMs < DUPLICATE_RRQ_WINDOW_MS) {
      return { verdict: 'ignore', why: 'retransmitted request read after the first ACK' };
    }
    // Same endpoint, a new request after progress: the client restarted; the old transfer is moot.
    supersede = true;
  }
  // Boot ROMs always use octet; netascii would make tsize and block offsets depend on content.
  if (req.mode !== 'octet') {
    return refuse('mode', ErrorCode.NOT_DEFINED, 'Only octet (binary) mode is supported', `mode ${req.mode}`);
  }
  // The superseded session is ended before the new one starts, so it does not count against either limit.
  const held = supersede ? 1 : 0;
  if (state.activeForClient - held >= limits.maxPerClient) {
    return refuse(
      'client-limit',
      ErrorCode.NOT_DEFINED,
      'Server busy',
      `maxPerClient (${limits.maxPerClient}) transfers already open for ${req.clientAddress}`,
    );
  }
  if (state.active - held >= limits.maxTransfers) {
    // Not an ERROR: a PXE ROM or iPXE gives up on the first ERROR it hears ("PXE-E36"), and the machine
    // then does not boot at all; silence only costs it a retransmission timeout.
    return { verdict: 'defer', detail: `maxTransfers (${limits.maxTransfers}) reached` };
  }
  return { verdict: 'accept', supersede };
}
