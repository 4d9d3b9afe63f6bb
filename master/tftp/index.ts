/** TFTP for boot loaders: RFC 1350 read requests with blksize, tsize, timeout and windowsize. */
export { startTftpServer } from './server.js';
export type { TftpServer, TftpServerOptions, TftpStats } from './server.js';
export { decodePacket, encodePacket, encodeError, ErrorCode, Opcode } from './codec.js';
export type { TftpPacket, DecodeResult, DecodeFailure } from './codec.js';
export { normalizeRequestPath, openInRoot } from './paths.js';
export { negotiateOptions } from './transfer.js';
