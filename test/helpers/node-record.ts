/**
 * A node as the store returns it, for tests of code that takes a `NodeRecord` (boot decisions, plans,
 * renders): every field has the value of a freshly enlisted node unless `fields` sets it.
 */
import type { NodeRecord } from '../../master/store/nodes.js';

export function nodeRecord(fields: Partial<NodeRecord> & Pick<NodeRecord, 'mac'>): NodeRecord {
  return {
    name: 'node-1',
    seqNo: 1,
    ip: null,
    state: 'discovered',
    role: null,
    firmware: null,
    inventory: {},
    tags: [],
    enrolledBy: null,
    image: null,
    stateReason: null,
    createdAt: '',
    updatedAt: '',
    lastSeenAt: null,
    ...fields,
  };
}
