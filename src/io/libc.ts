// The few libc calls the packet adapters need, through koffi. Bound lazily: importing the
// library never loads koffi or libc; the first adapter that opens does, and on a machine
// without them it fails then, with one clear line.
//
// Pointers are passed as BigInt addresses (koffi 3): `address(buffer)` gives the address of
// a Buffer / ArrayBuffer backing store, including the wasm memory, so iovecs can point
// straight into packet slots (see docs/io.md, "copy or no copy").
//
// Structs are packed by hand with DataView for the LP64 Linux ABI (x86_64, aarch64): the
// layouts are fixed by the kernel and writing them ourselves keeps koffi's marshalling off
// the hot path. Sizes and offsets are below, next to each helper.

import { createRequire } from "node:module";

/** A system call failed: `code` is the errno name (EPERM, EAGAIN ...). */
export class IoError extends Error {
  readonly code: string;
  readonly errno: number;
  constructor(errno: number, what: string, hint?: string) {
    const code = errnoName(errno);
    super(`${code} ${what}${hint ? `: ${hint}` : `: ${errnoText(errno)}`}`);
    this.name = "IoError";
    this.code = code;
    this.errno = errno;
  }
}

/** The platform cannot run the adapters (not Linux, not 64-bit, koffi missing). */
export class IoUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IoUnavailableError";
  }
}

// ------------------------------------------------------------------ constants (Linux)

export const AF_INET = 2;
export const AF_PACKET = 17;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const O_RDWR = 2;
export const O_RDONLY = 0;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const ETH_P_ALL = 0x0003;
export const ETH_P_ARP = 0x0806;
export const SOL_SOCKET = 1;
export const SO_RCVBUF = 8;
export const SO_SNDBUF = 7;
export const SO_RCVBUFFORCE = 33;
export const SO_SNDBUFFORCE = 32;
export const SOL_PACKET = 263;
export const PACKET_ADD_MEMBERSHIP = 1;
export const PACKET_AUXDATA = 8;
export const PACKET_FANOUT = 18;
export const PACKET_IGNORE_OUTGOING = 23;
export const PACKET_VNET_HDR = 15;
export const PACKET_QDISC_BYPASS = 20;
export const PACKET_FANOUT_HASH = 0;
export const PACKET_FANOUT_LB = 1;
export const PACKET_FANOUT_CPU = 2;
export const PACKET_FANOUT_FLAG_DEFRAG = 0x8000;
/** In a fanout group the group's hook taps the device, so PACKET_IGNORE_OUTGOING needs this flag too (include/uapi/linux/if_packet.h). */
export const PACKET_FANOUT_FLAG_IGNORE_OUTGOING = 0x4000;
export const PACKET_MR_PROMISC = 1;
export const MSG_DONTWAIT = 0x40;
export const MSG_TRUNC = 0x20;
export const POLLIN = 0x1;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const CLONE_NEWNET = 0x40000000;

export const TUNSETIFF = 0x400454ca;
export const TUNSETPERSIST = 0x400454cb;
export const IFF_TUN = 0x0001;
export const IFF_TAP = 0x0002;
export const IFF_NO_PI = 0x1000;
export const IFF_MULTI_QUEUE = 0x0100;
export const IFF_VNET_HDR = 0x4000;
/** _IOW('T', 208, unsigned int): offloads the reader of a TUN device handles (TUN_F_*). */
export const TUNSETOFFLOAD = 0x400454d0;
/** _IOW('T', 216, int): bytes of the virtio_net_hdr in front of each packet. */
export const TUNSETVNETHDRSZ = 0x400454d8;
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
export const TUN_F_TSO_ECN = 0x08;
export const TUN_F_USO4 = 0x20;
export const TUN_F_USO6 = 0x40;
export const IFF_UP = 0x1;
export const SIOCGIFFLAGS = 0x8913;
export const SIOCSIFFLAGS = 0x8914;
export const SIOCGIFMTU = 0x8921;
export const SIOCSIFMTU = 0x8922;
export const SIOCGIFHWADDR = 0x8927;
export const SIOCSIFTXQLEN = 0x8943;
export const SIOCGIFINDEX = 0x8933;
export const IFNAMSIZ = 16;

/** struct iovec: 16 bytes (base u64, len u64). */
export const IOVEC_SIZE = 16;
/** struct mmsghdr: struct msghdr (56 bytes) + msg_len (u32) + padding = 64 bytes. */
export const MMSGHDR_SIZE = 64;
/** Offsets inside struct msghdr. */
export const MSGHDR = { name: 0, namelen: 8, iov: 16, iovlen: 24, control: 32, controllen: 40, flags: 48, len: 56 } as const;
/** struct sockaddr_ll: 20 bytes. */
export const SOCKADDR_LL_SIZE = 20;
/** struct ifreq: 40 bytes (name[16] + a 24-byte union). */
export const IFREQ_SIZE = 40;
/** struct pollfd: 8 bytes (fd i32, events i16, revents i16). */
export const POLLFD_SIZE = 8;

// ------------------------------------------------------------------ binding

type Ptr = bigint;
type Fn<A extends unknown[], R> = ((...args: A) => R) & { async: (...args: [...A, (err: unknown, result: R) => void]) => void };

export interface Libc {
  socket: Fn<[number, number, number], number>;
  bind: Fn<[number, Ptr, number], number>;
  setsockopt: Fn<[number, number, number, Ptr, number], number>;
  getsockopt: Fn<[number, number, number, Ptr, Ptr], number>;
  ioctl: Fn<[number, number, Ptr], number>;
  open: Fn<[string, number], number>;
  read: Fn<[number, Ptr, number], number>;
  write: Fn<[number, Ptr, number], number>;
  readv: Fn<[number, Ptr, number], number>;
  writev: Fn<[number, Ptr, number], number>;
  recvmmsg: Fn<[number, Ptr, number, number, Ptr], number>;
  sendmmsg: Fn<[number, Ptr, number, number], number>;
  sendto: Fn<[number, Ptr, number, number, Ptr, number], number>;
  poll: Fn<[Ptr, number, number], number>;
  close: Fn<[number], number>;
  setns: Fn<[number, number], number>;
  if_nametoindex: Fn<[string], number>;
  madvise: Fn<[bigint, number, number], number>;
  /** eventfd(2): lvsd's workers wake each other with one (src/runtime/workers). */
  eventfd: Fn<[number, number], number>;
  /** mmap(2), munmap(2) and syscall(2) with six integer arguments: the io_uring rings (src/io/uring.ts). */
  mmap: Fn<[bigint, number, number, number, number, bigint], bigint>;
  munmap: Fn<[bigint, number], number>;
  syscall6: Fn<[number, number, number, number, number, bigint, number], number>;
  /** An ArrayBuffer over `length` bytes of native memory at `address` (no copy). */
  view(address: bigint, length: number): ArrayBuffer;
  /** errno of the last call on this thread. */
  errno(): number;
  /** Address of a Buffer, TypedArray or ArrayBuffer's first byte (no copy). */
  address(buffer: ArrayBuffer | ArrayBufferView): bigint;
}

interface Koffi {
  load(name: string): { func(decl: string): unknown };
  errno(): number;
  address(value: unknown): bigint;
  view(address: bigint, length: number): ArrayBuffer;
  os: { errno: Record<string, number> };
}

let bound: Libc | undefined;
let koffiModule: Koffi | undefined;
let errnoNames: Map<number, string> | undefined;

/** The koffi module (CommonJS, default export or not); a one-line IoUnavailableError where it is missing. */
export function loadKoffi<K>(): K {
  try {
    const required = createRequire(import.meta.url)("koffi") as K & { default?: K };
    return required.default ?? required;
  } catch (e) {
    throw new IoUnavailableError(`koffi could not be loaded (npm install koffi): ${(e as Error).message}`);
  }
}

/** The bound libc; throws IoUnavailableError where it cannot be had. */
export function libc(): Libc {
  if (bound) return bound;
  if (process.platform !== "linux") {
    throw new IoUnavailableError(`packet I/O needs Linux (this is ${process.platform}): use an in-memory PacketIO or your own adapter`);
  }
  if (process.arch !== "x64" && process.arch !== "arm64") {
    throw new IoUnavailableError(`packet I/O supports 64-bit Linux (x64, arm64), not ${process.arch}`);
  }
  const koffi = loadKoffi<Koffi>();
  let lib: { func(decl: string): unknown };
  try {
    lib = koffi.load("libc.so.6");
  } catch (e) {
    throw new IoUnavailableError(`libc.so.6 could not be loaded (glibc needed): ${(e as Error).message}`);
  }
  const f = <T>(decl: string) => lib.func(decl) as T;
  koffiModule = koffi;
  bound = {
    socket: f("int socket(int domain, int type, int protocol)"),
    bind: f("int bind(int fd, void *addr, uint32_t len)"),
    setsockopt: f("int setsockopt(int fd, int level, int name, void *value, uint32_t len)"),
    getsockopt: f("int getsockopt(int fd, int level, int name, void *value, void *len)"),
    ioctl: f("int ioctl(int fd, unsigned long request, void *arg)"),
    open: f("int open(const char *path, int flags)"),
    read: f("long read(int fd, void *buf, unsigned long count)"),
    write: f("long write(int fd, void *buf, unsigned long count)"),
    readv: f("long readv(int fd, void *iov, int iovcnt)"),
    writev: f("long writev(int fd, void *iov, int iovcnt)"),
    recvmmsg: f("int recvmmsg(int fd, void *msgs, unsigned int vlen, int flags, void *timeout)"),
    sendmmsg: f("int sendmmsg(int fd, void *msgs, unsigned int vlen, int flags)"),
    sendto: f("long sendto(int fd, void *buf, unsigned long len, int flags, void *addr, uint32_t addrlen)"),
    poll: f("int poll(void *fds, unsigned long nfds, int timeout)"),
    close: f("int close(int fd)"),
    setns: f("int setns(int fd, int nstype)"),
    if_nametoindex: f("unsigned int if_nametoindex(const char *name)"),
    madvise: f("int madvise(void *addr, unsigned long length, int advice)"),
    eventfd: f("int eventfd(unsigned int initval, int flags)"),
    mmap: f("void *mmap(void *addr, unsigned long length, int prot, int flags, int fd, long offset)"),
    munmap: f("int munmap(void *addr, unsigned long length)"),
    // glibc's syscall() passes integer arguments in registers, variadic or not (x86_64, aarch64).
    syscall6: f("long syscall(long number, long a, long b, long c, long d, void *e, long f)"),
    view: (address, length) => koffi.view(address, length),
    errno: () => koffi.errno(),
    address: (b) => koffi.address(b),
  };
  return bound;
}

/** The errno name of a number (EPERM ...), or `errno N`. */
export function errnoName(errno: number): string {
  if (!errnoNames) {
    errnoNames = new Map();
    if (koffiModule) for (const [k, v] of Object.entries(koffiModule.os.errno)) if (!errnoNames.has(v)) errnoNames.set(v, k);
  }
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

const ERRNO_TEXT: Record<string, string> = {
  EPERM: "operation not permitted: run as root (or with CAP_NET_ADMIN / CAP_NET_RAW)",
  EACCES: "permission denied: run as root (or with CAP_NET_ADMIN / CAP_NET_RAW)",
  ENOENT: "no such file or directory",
  ENODEV: "no such device",
  EBUSY: "device or resource busy",
  EINVAL: "invalid argument",
  EAGAIN: "try again",
  EBADF: "bad file descriptor",
  ENOBUFS: "no buffer space available",
  EMSGSIZE: "message too long",
  ENETDOWN: "network is down: bring the interface up",
  ENXIO: "no such device or address",
};

function errnoText(errno: number): string {
  return ERRNO_TEXT[errnoName(errno)] ?? "system call failed";
}

/** Throws an IoError for the current errno when rc < 0. */
export function check(rc: number, what: string, hint?: string): number {
  if (rc < 0) throw new IoError(libc().errno(), what, hint);
  return rc;
}

// ------------------------------------------------------------------ struct helpers

/** struct ifreq with the name filled in. */
export function ifreq(name: string): Buffer {
  if (!name || Buffer.byteLength(name) >= IFNAMSIZ || name.includes("/") || /\s/.test(name)) {
    throw new RangeError(`interface name "${name}" is not valid: 1..15 bytes, no '/' or spaces`);
  }
  const b = Buffer.alloc(IFREQ_SIZE);
  b.write(name, 0, "latin1");
  return b;
}

/** struct sockaddr_ll for bind(): family AF_PACKET, protocol (host order; stored big-endian), ifindex. */
export function sockaddrLl(protocol: number, ifindex: number): Buffer {
  const b = Buffer.alloc(SOCKADDR_LL_SIZE);
  b.writeUInt16LE(AF_PACKET, 0);
  b.writeUInt16BE(protocol, 2);
  b.writeInt32LE(ifindex, 4);
  return b;
}

/** An int socket option value. */
export function intOption(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value, 0);
  return b;
}

/** Reads an int socket option. */
export function getIntOption(fd: number, level: number, name: number, what: string): number {
  const c = libc();
  const v = Buffer.alloc(4);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(4, 0);
  check(c.getsockopt(fd, level, name, c.address(v), c.address(len)), what);
  return v.readInt32LE(0);
}

/** Sets an int socket option. */
export function setIntOption(fd: number, level: number, name: number, value: number, what: string, hint?: string): void {
  const c = libc();
  const v = intOption(value);
  check(c.setsockopt(fd, level, name, c.address(v), 4), what, hint);
}

/** Interface index of a name in the calling thread's network namespace. */
export function interfaceIndex(name: string): number {
  const c = libc();
  const index = c.if_nametoindex(name);
  if (index === 0) throw new IoError(c.errno(), `looking up interface ${name}`, "no such interface in this network namespace");
  return index;
}

/** MAC address of an interface, "aa:bb:cc:dd:ee:ff". */
export function interfaceMac(name: string): string {
  const c = libc();
  const fd = check(c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), "opening a control socket");
  try {
    const req = ifreq(name);
    check(c.ioctl(fd, SIOCGIFHWADDR, c.address(req)), `reading the MAC of ${name}`);
    return [...req.subarray(18, 24)].map((x) => x.toString(16).padStart(2, "0")).join(":");
  } finally {
    c.close(fd);
  }
}

/** Sets an interface's MTU, transmit queue length, and/or brings it up (SIOCSIFMTU, SIOCSIFTXQLEN, SIOCSIFFLAGS). */
export function configureInterface(name: string, options: { mtu?: number; txQueueLength?: number; up?: boolean }): void {
  const c = libc();
  const fd = check(c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), "opening a control socket");
  try {
    if (options.mtu !== undefined) {
      const req = ifreq(name);
      req.writeInt32LE(options.mtu, 16);
      check(c.ioctl(fd, SIOCSIFMTU, c.address(req)), `setting the MTU of ${name} to ${options.mtu}`);
    }
    if (options.txQueueLength !== undefined) {
      const req = ifreq(name);
      req.writeInt32LE(options.txQueueLength, 16);
      check(c.ioctl(fd, SIOCSIFTXQLEN, c.address(req)), `setting the transmit queue length of ${name} to ${options.txQueueLength}`);
    }
    if (options.up) {
      const req = ifreq(name);
      check(c.ioctl(fd, SIOCGIFFLAGS, c.address(req)), `reading the flags of ${name}`);
      req.writeInt16LE(req.readInt16LE(16) | IFF_UP, 16);
      check(c.ioctl(fd, SIOCSIFFLAGS, c.address(req)), `bringing ${name} up`);
    }
  } finally {
    c.close(fd);
  }
}

/**
 * Waits until one of the fds is readable, off the JavaScript thread (poll(2) on libuv's
 * thread pool), so the event loop keeps running. Resolves with the readable fds' indexes.
 */
export function pollReadable(fds: readonly number[], timeoutMs: number): Promise<number[]> {
  const c = libc();
  const set = Buffer.alloc(POLLFD_SIZE * fds.length);
  fds.forEach((fd, i) => {
    set.writeInt32LE(fd, i * POLLFD_SIZE);
    set.writeInt16LE(POLLIN, i * POLLFD_SIZE + 4);
  });
  return new Promise((resolve, reject) => {
    c.poll.async(c.address(set), fds.length, Math.max(0, Math.floor(timeoutMs)), (err, rc) => {
      // `set` stays referenced by this closure until the call returns.
      if (err) return reject(err);
      if (rc < 0) return resolve([]); // EINTR and friends: the caller loops
      const ready: number[] = [];
      for (let i = 0; i < fds.length; i++) if (set.readInt16LE(i * POLLFD_SIZE + 6) !== 0) ready.push(i);
      resolve(ready);
    });
  });
}

/** Blocks this thread until fd is readable or timeoutMs passes; true when readable. */
export function pollOne(fd: number, timeoutMs: number): boolean {
  const c = libc();
  const set = Buffer.alloc(POLLFD_SIZE);
  set.writeInt32LE(fd, 0);
  set.writeInt16LE(POLLIN, 4);
  const rc = c.poll(c.address(set), 1, Math.max(0, Math.floor(timeoutMs)));
  return rc > 0 && set.readInt16LE(6) !== 0;
}
