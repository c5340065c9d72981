// lvsadm --json: the data behind the classic listings, for scripts. The text output stays
// ipvsadm's; JSON is added beside it. 64-bit counters are written as exact integers (a
// consumer that parses numbers as doubles loses precision past 2^53, not lvsadm).

/** JSON text of a value whose bigints are written as plain integers. */
export function toJson(value: unknown): string {
  const marks = new Map<string, string>();
  let n = 0;
  const text = JSON.stringify(
    value,
    (_key, v: unknown) => {
      if (typeof v !== "bigint") return v;
      const mark = `\u0000bigint${n++}\u0000`;
      marks.set(mark, v.toString());
      return mark;
    },
    2,
  );
  return text.replace(/"\\u0000bigint\d+\\u0000"/g, (quoted) => marks.get(JSON.parse(quoted) as string) ?? quoted);
}

/** Takes `--json` out of an lvsadm argument vector (it is not an ipvsadm option). */
export function extractJsonFlag(argv: readonly string[]): { argv: string[]; json: boolean } {
  const rest = argv.filter((a) => a !== "--json");
  return { argv: rest, json: rest.length !== argv.length };
}
