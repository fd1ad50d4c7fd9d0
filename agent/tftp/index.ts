export { TftpServer, type TftpServerOptions, type TftpStats, type TftpTransferEvent } from './server.js';
export type { TransferOutcome } from './transfer.js';
