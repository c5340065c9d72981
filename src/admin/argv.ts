// popt's reading of an argument vector, as ipvsadm sees it: long options ("--weight=3" or
// "--weight 3"), bundled short options ("-Lnc", "-w3", "-w=3"), optional arguments taken
// only from a next word that does not start with '-', "--" ending the options, and every
// other word kept as a leftover argument. Errors surface lazily, where popt meets them.

export type ArgumentKind = "none" | "required" | "optional";

export interface OptionSpec<Tag extends string> {
  readonly long?: string;
  readonly short?: string;
  readonly argument: ArgumentKind;
  readonly tag: Tag;
}

/** popt's poptStrerror() texts for the errors this scanner can report. */
export type PoptErrorText = "missing argument" | "unknown option" | "option does not take an argument";

export type PoptEvent<Tag extends string> =
  | { readonly type: "option"; readonly tag: Tag; readonly value: string | undefined }
  | { readonly type: "end" }
  | { readonly type: "error"; readonly error: PoptErrorText; readonly badOption: string };

/** Option tables by short letter and long name: a 250,000-line restore looks up a million options. */
interface OptionIndex<Tag extends string> {
  readonly short: Map<string, OptionSpec<Tag>>;
  readonly long: Map<string, OptionSpec<Tag>>;
}
const indexes = new WeakMap<readonly OptionSpec<string>[], OptionIndex<string>>();

function indexOf<Tag extends string>(table: readonly OptionSpec<Tag>[]): OptionIndex<Tag> {
  let index = indexes.get(table) as OptionIndex<Tag> | undefined;
  if (!index) {
    // The first spec with a name wins, as a search from the start of the table finds it.
    const short = new Map<string, OptionSpec<Tag>>();
    const long = new Map<string, OptionSpec<Tag>>();
    for (const spec of table) {
      if (spec.short !== undefined && !short.has(spec.short)) short.set(spec.short, spec);
      if (spec.long !== undefined && !long.has(spec.long)) long.set(spec.long, spec);
    }
    index = { short, long };
    indexes.set(table, index as OptionIndex<string>);
  }
  return index;
}

export class PoptScanner<Tag extends string> {
  private readonly words: readonly string[];
  private readonly table: OptionIndex<Tag>;
  private next = 0;
  /** The rest of a bundle of short options ("-Ln" after L: "n"); null when none. */
  private nextCharArg: string | null = null;
  private restAreLeftovers = false;
  private readonly leftoverWords: string[] = [];
  private leftoverCursor = 0;

  /** words: the arguments after the program name. A C program never sees past a NUL. */
  constructor(words: readonly string[], table: readonly OptionSpec<Tag>[]) {
    this.words = words.map((word) => {
      const nul = word.indexOf("\0");
      return nul === -1 ? word : word.slice(0, nul);
    });
    this.table = indexOf(table);
  }

  nextOption(): PoptEvent<Tag> {
    for (;;) {
      if (this.nextCharArg === null && this.next === this.words.length) return { type: "end" };
      let option: OptionSpec<Tag> | undefined;
      let longArg: string | undefined;

      if (this.nextCharArg === null) {
        const word = this.words[this.next++]!;
        if (this.restAreLeftovers || word[0] !== "-" || word === "-") {
          this.leftoverWords.push(word);
          continue;
        }
        if (word === "--") {
          this.restAreLeftovers = true;
          continue;
        }
        if (word[1] === "-") {
          const body = word.slice(2);
          const eq = body.indexOf("=");
          const name = eq === -1 ? body : body.slice(0, eq);
          if (eq !== -1) longArg = body.slice(eq + 1);
          option = name.length > 0 ? this.table.long.get(name) : undefined;
          if (!option) return this.error("unknown option");
        } else {
          // One dash: ipvsadm has no one-dash long options, so these are short options.
          this.nextCharArg = word.slice(1);
        }
      }

      if (this.nextCharArg !== null) {
        const bundle = this.nextCharArg;
        this.nextCharArg = null;
        const letter = bundle[0];
        option = letter === undefined ? undefined : this.table.short.get(letter);
        if (!option) return this.error("unknown option");
        const rest = bundle.slice(1);
        if (rest.length > 0) this.nextCharArg = rest[0] === "=" ? rest.slice(1) : rest;
      }

      const spec = option!;
      if (spec.argument === "none") {
        if (longArg !== undefined || (this.nextCharArg !== null && this.nextCharArg[0] === "=")) {
          return this.error("option does not take an argument");
        }
        return { type: "option", tag: spec.tag, value: undefined };
      }
      let value: string | undefined;
      if (longArg !== undefined) {
        value = longArg;
      } else if (this.nextCharArg !== null) {
        value = this.nextCharArg[0] === "=" ? this.nextCharArg.slice(1) : this.nextCharArg;
        this.nextCharArg = null;
      } else if (this.next === this.words.length) {
        if (spec.argument === "required") return this.error("missing argument");
        value = undefined;
      } else if (spec.argument === "optional" && this.words[this.next]![0] === "-") {
        value = undefined;
      } else {
        value = this.words[this.next++]!;
      }
      return { type: "option", tag: spec.tag, value };
    }
  }

  /** poptBadOption(): the last word popt read (after an option, possibly its value). */
  lastWord(): string {
    return this.words[this.next - 1] ?? "";
  }

  /** poptGetArg: the next leftover word (non-option argument), in order. */
  nextLeftover(): string | undefined {
    return this.leftoverWords[this.leftoverCursor++];
  }

  private error(error: PoptErrorText): PoptEvent<Tag> {
    // poptBadOption(): the whole word popt was reading when it failed.
    return { type: "error", error, badOption: this.lastWord() };
  }
}
