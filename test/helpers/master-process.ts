export {
  startMasterProcess,
  exitOf,
  basic,
  CLI,
  type MasterProcess,
  type StartOptions,
} from '../../master/lab/master-process.js';
