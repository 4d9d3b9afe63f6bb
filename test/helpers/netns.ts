/** The lab's namespace toolkit, under the names the tests use. */
export { LabNet as TestNet, run, hasCommand, runId, waitFor, type Host } from '../../master/lab/net.js';
