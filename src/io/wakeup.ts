// A wake-up file descriptor (eventfd(2), non-blocking): a thread sleeping in poll(2) on its
// packet adapters also polls this one, and another thread writes to it to wake it. lvsd's
// data-plane workers use one each, so that a packet handed over by another worker, or a
// configuration commit, does not wait for the poll timeout (src/runtime/workers).

import { check, libc } from "./libc.js";

const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;

export class Wakeup {
  private readonly word = new BigUint64Array(1);
  private readonly address: bigint;

  private constructor(readonly fd: number) {
    this.word[0] = 1n;
    this.address = libc().address(this.word);
  }

  /** A new eventfd; its number is valid in every thread of the process. */
  static create(): Wakeup {
    return new Wakeup(check(libc().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), "creating an eventfd"));
  }

  /** The same eventfd, opened by another thread (create() made it). */
  static of(fd: number): Wakeup {
    return new Wakeup(fd);
  }

  /** Makes the fd readable (adds one to its counter). */
  signal(): void {
    this.word[0] = 1n;
    libc().write(this.fd, this.address, 8);
  }

  /** Resets the counter, so the fd stops polling readable. */
  drain(): void {
    libc().read(this.fd, this.address, 8);
  }

  close(): void {
    libc().close(this.fd);
  }
}
