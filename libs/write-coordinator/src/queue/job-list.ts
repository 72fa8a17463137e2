/** @internal A node that can sit in one {@link JobList} at a time. */
export interface ListNode<T extends ListNode<T>> {
  prev: T | null;
  next: T | null;
}

/**
 * @internal Intrusive doubly linked FIFO: O(1) push, shift and removal from the middle (a job
 * aborted while waiting leaves the queue at once, so it can never run and never holds a slot).
 */
export class JobList<T extends ListNode<T>> {
  private head: T | null = null;
  private tail: T | null = null;
  size = 0;

  push(node: T): void {
    node.prev = this.tail;
    node.next = null;
    if (this.tail) this.tail.next = node;
    else this.head = node;
    this.tail = node;
    this.size++;
  }

  shift(): T | null {
    const node = this.head;
    if (node) this.remove(node);
    return node;
  }

  peek(): T | null {
    return this.head;
  }

  remove(node: T): void {
    if (node.prev) node.prev.next = node.next;
    else this.head = node.next;
    if (node.next) node.next.prev = node.prev;
    else this.tail = node.prev;
    node.prev = node.next = null;
    this.size--;
  }
}
