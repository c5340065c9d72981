// The few libxdp calls the AF_XDP adapter needs (Debian's libxdp1), through koffi. Bound
// lazily, like libc.ts: importing this file loads nothing; the first AF_XDP socket does,
// and where libxdp is missing it fails then, with one line naming the package.
//
// libxdp does what we would otherwise write ourselves: it registers the UMEM and maps its
// fill and completion rings (xsk_umem__create), and creates the socket, maps its RX and TX
// rings and loads and attaches its default redirect program (xsk_socket__create). The ring
// operations themselves (reserve, submit, peek, release) are inline functions in
// <xdp/xsk.h>; xsk-ring.ts does them in TypeScript over the same ring memory, so no packet
// costs a native call.
//
// LVS_WASM_LIBXDP names another library file to load (tests use it to simulate a machine
// without libxdp; it may also point at a libxdp built elsewhere).

import { IoUnavailableError, loadKoffi } from "./libc.js";

type Ptr = bigint;

export interface LibXdp {
  /** int xsk_umem__create(struct xsk_umem **umem, void *area, u64 size, struct xsk_ring_prod *fill, struct xsk_ring_cons *comp, const struct xsk_umem_config *config) */
  umemCreate(umemOut: Ptr, area: Ptr, size: bigint, fill: Ptr, comp: Ptr, config: Ptr): number;
  /** int xsk_socket__create(struct xsk_socket **xsk, const char *ifname, u32 queue, struct xsk_umem *umem, struct xsk_ring_cons *rx, struct xsk_ring_prod *tx, const struct xsk_socket_config *config) */
  socketCreate(xskOut: Ptr, ifname: string, queue: number, umem: Ptr, rx: Ptr, tx: Ptr, config: Ptr): number;
  socketFd(xsk: Ptr): number;
  /** Closes the socket; the last socket of an interface also detaches libxdp's program. */
  socketDelete(xsk: Ptr): void;
  /** 0, or -EBUSY while a socket still uses the UMEM. */
  umemDelete(umem: Ptr): number;
  /** The file that was loaded. */
  readonly path: string;
}

interface Koffi {
  load(name: string): { func(decl: string): unknown };
}

let bound: LibXdp | undefined;

/** The library file lvsd loads: $LVS_WASM_LIBXDP, else Debian's libxdp.so.1. */
export function libxdpPath(): string {
  return process.env.LVS_WASM_LIBXDP || "libxdp.so.1";
}

/** The bound libxdp; throws IoUnavailableError (one line) where it cannot be loaded. */
export function libxdp(): LibXdp {
  const path = libxdpPath();
  if (bound && bound.path === path) return bound;
  if (process.platform !== "linux") throw new IoUnavailableError(`AF_XDP needs Linux (this is ${process.platform})`);
  const koffi = loadKoffi<Koffi>();
  let lib: { func(decl: string): unknown };
  try {
    lib = koffi.load(path);
  } catch (e) {
    const why = (e as Error).message.split("\n")[0];
    throw new IoUnavailableError(`AF_XDP needs libxdp: ${path} could not be loaded (apt-get install libxdp1): ${why}`);
  }
  const f = <T>(decl: string) => lib.func(decl) as T;
  try {
    bound = {
      umemCreate: f("int xsk_umem__create(void *umem, void *area, uint64_t size, void *fill, void *comp, void *config)"),
      socketCreate: f("int xsk_socket__create(void *xsk, const char *ifname, uint32_t queue, void *umem, void *rx, void *tx, void *config)"),
      socketFd: f("int xsk_socket__fd(void *xsk)"),
      socketDelete: f("void xsk_socket__delete(void *xsk)"),
      umemDelete: f("int xsk_umem__delete(void *umem)"),
      path,
    };
    // libxdp and libbpf print warnings to stderr (no bpffs, skipped ELF sections); the
    // adapter reports what matters in its own errors, so both are silenced.
    (f("void *libxdp_set_print(void *fn)") as (fn: null) => unknown)(null);
    silenceLibbpf(koffi);
  } catch (e) {
    throw new IoUnavailableError(`AF_XDP: ${path} lacks the xsk_* functions of libxdp 1.2 or later: ${(e as Error).message.split("\n")[0]}`);
  }
  return bound;
}

function silenceLibbpf(koffi: Koffi): void {
  try {
    (koffi.load("libbpf.so.1").func("void *libbpf_set_print(void *fn)") as (fn: null) => unknown)(null);
  } catch {
    // libxdp found its libbpf another way: its warnings stay on stderr
  }
}
