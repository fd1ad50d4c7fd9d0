/**
 * Collects items that become due during one turn of the event loop and hands them over together at
 * its end (setImmediate), in the order they were added: many reports applied in one commit, many acks
 * or tasks in one frame.
 */
export class TurnBatcher<T> {
  private items: T[] = [];
  private timer: NodeJS.Immediate | null = null;

  constructor(private readonly flush: (items: T[]) => void) {}

  add(item: T): void {
    this.items.push(item);
    if (this.timer) return;
    this.timer = setImmediate(() => {
      this.timer = null;
      this.flush(this.items.splice(0));
    });
  }
}
