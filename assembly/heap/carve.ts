// Start-up regions larger than one allocation of the stub runtime. heap.alloc refuses a
// block of 1 GiB or more (it aborts at ~lib/rt/stub.ts 33:29), which a connection table of
// 2^24 entries needs (1.5 GiB of records). The stub runtime is a bump allocator that never
// frees, so consecutive blocks lie end to end, 4 header bytes apart: a large region is
// carved as several blocks and used as one (the headers inside it are only read by
// __free / __realloc, which nothing here calls).

const PIECE: usize = 1 << 29;

/** Start of `bytes` contiguous bytes of fresh heap memory (any size that fits in memory). */
export function carve(bytes: usize): usize {
  const first = heap.alloc(bytes < PIECE ? bytes : PIECE);
  let end = first + (bytes < PIECE ? bytes : PIECE);
  while (end < first + bytes) {
    const left = first + bytes - end;
    const piece = heap.alloc(left < PIECE ? left : PIECE);
    // Each next block starts right after the previous one (one header between).
    if (piece > end + 16) unreachable();
    end = piece + (left < PIECE ? left : PIECE);
  }
  return first;
}
