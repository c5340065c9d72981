// lvsadm --json: the data behind the classic listings, for scripts. The text output stays
// ipvsadm's; JSON is added beside it. 64-bit counters are written as exact integers (a
// consumer that parses numbers as doubles loses precision past 2^53, not lvsadm).

import type { Slicer } from "../balancer/slices.js";

/** JSON text of a value whose bigints are written as plain integers. */
export function toJson(value: unknown): string {
  // Bigints a double holds exactly become numbers (JSON.stringify writes them with the same
  // digits, and without a replacer it is many times faster: a 50,000-service listing has
  // two million counters); only larger ones take the marks.
  const marks = new Map<string, string>();
  let n = 0;
  const plain = withSafeNumbers(value, (big) => {
    const mark = `\u0000bigint${n++}\u0000`;
    marks.set(mark, big.toString());
    return mark;
  });
  const text = JSON.stringify(plain, null, 2);
  return marks.size === 0 ? text : text.replace(/"\\u0000bigint\d+\\u0000"/g, (quoted) => marks.get(JSON.parse(quoted) as string) ?? quoted);
}

/** A copy of plain data with safe bigints as numbers and the others as `mark(big)`. */
function withSafeNumbers(value: unknown, mark: (big: bigint) => string): unknown {
  if (typeof value === "bigint") return value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : mark(value);
  if (value === null || typeof value !== "object") return value;
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") return value;
  if (Array.isArray(value)) return value.map((v) => withSafeNumbers(v, mark));
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) out[key] = withSafeNumbers((value as Record<string, unknown>)[key], mark);
  return out;
}
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * toJson({ ...head, [key]: items }) in slices: each item written on its own, the same text
 * byte for byte (the item's lines indented under the list), pausing between slices.
 */
export async function toJsonInSlices(head: Record<string, unknown>, key: string, items: readonly unknown[], slicer: Slicer): Promise<string> {
  const texts: string[] = [];
  for (let i = 0; i < items.length; i++) {
    texts.push(jsonListItem(items[i]));
    if ((i & 15) === 15 && slicer.due()) await slicer.pauseNow();
  }
  return joinJsonList(head, key, texts);
}

/** One item of toJsonInSlices's list, indented as there (lvsd's data-plane worker writes them, its main thread joins). */
export function jsonListItem(item: unknown): string {
  // Written as the one element of a list two levels down, so JSON.stringify indents it.
  const wrapped = toJson({ a: [item] });
  return wrapped.slice(WRAP_HEAD.length, wrapped.length - WRAP_TAIL.length);
}

/** toJson({ ...head, [key]: items }) from the items' jsonListItem texts: the same text, byte for byte. */
export function joinJsonList(head: Record<string, unknown>, key: string, texts: readonly string[]): string {
  if (texts.length === 0) return toJson({ ...head, [key]: [] });
  const frame = toJson({ ...head, [key]: [PLACEHOLDER] });
  const at = frame.indexOf(`    ${JSON.stringify(PLACEHOLDER)}`);
  return frame.slice(0, at) + texts.join(",\n") + frame.slice(at + 4 + JSON.stringify(PLACEHOLDER).length);
}
const PLACEHOLDER = "\u0000items\u0000";
const WRAP_HEAD = '{\n  "a": [\n';
const WRAP_TAIL = "\n  ]\n}";

/** Takes `--json` out of an lvsadm argument vector (it is not an ipvsadm option). */
export function extractJsonFlag(argv: readonly string[]): { argv: string[]; json: boolean } {
  const rest = argv.filter((a) => a !== "--json");
  return { argv: rest, json: rest.length !== argv.length };
}
