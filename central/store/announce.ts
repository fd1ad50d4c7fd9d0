import type { ChangeFeed } from './change-feed.js';
import type { Doc, WriteOp } from './types.js';

/** Announces a durable commit's ops, each with the document it replaced (`before[i]` for `ops[i]`). A delete of nothing is not announced. */
export function announce(changes: ChangeFeed, ops: WriteOp[], before: (Doc | undefined)[]): void {
  ops.forEach((op, i) => {
    const prev = before[i];
    if (op.type === 'put') changes.emit({ collection: op.collection, type: 'put', id: op.doc.id, doc: op.doc, ...(prev ? { before: prev } : {}) });
    else if (prev) changes.emit({ collection: op.collection, type: 'delete', id: op.id, before: prev });
  });
}
