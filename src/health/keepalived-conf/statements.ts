// keepalived.conf as a tree of statements: each line is a statement of words; a statement
// whose last word is "{" (or followed by a line holding only "{") opens a block that the
// matching "}" closes. Words are split on blanks, "{" and "}" stand alone, a word starting
// with "#" or "!" starts a comment, and "double quoted" text is one word (keepalived's
// parser, lib/parser.c). `include PATTERN` is replaced by the statements of the files it
// names (a "*" / "?" / "[...]" pattern in the file name; relative to the including file).
import { readFileSync, readdirSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { KeepalivedConfError } from "./diagnostics.js";

export interface Statement {
  readonly words: readonly string[];
  readonly file: string;
  readonly line: number;
  /** The block's statements, when the statement opens one. */
  readonly block?: readonly Statement[];
}

interface Line {
  readonly words: string[];
  readonly file: string;
  readonly line: number;
}

const MAX_INCLUDE_DEPTH = 8;

/** The words of one line, or throws on an unterminated quote. */
export function splitWords(text: string, where: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === " " || c === "\t" || c === "\r") {
      i++;
    } else if (c === "#" || c === "!") {
      break;
    } else if (c === "{" || c === "}") {
      words.push(c);
      i++;
    } else if (c === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0) throw new KeepalivedConfError(`${where}: unterminated quoted string`);
      words.push(text.slice(i + 1, end));
      i = end + 1;
    } else {
      let j = i;
      while (j < text.length && !' \t\r{}"'.includes(text[j])) j++;
      words.push(text.slice(i, j));
      i = j;
    }
  }
  return words;
}

function globToRegExp(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 1);
      if (end < 0) re += "\\[";
      else {
        re += `[${pattern.slice(i + 1, end).replace(/^!/, "^")}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** The files an include pattern names, sorted (glob(3) order). */
function includeFiles(pattern: string, from: string, where: string): string[] {
  const full = isAbsolute(pattern) ? pattern : resolve(dirname(from), pattern);
  if (!/[*?[]/.test(basename(full))) return [full];
  const dir = dirname(full);
  if (/[*?[]/.test(dir)) throw new KeepalivedConfError(`${where}: include ${pattern}: wildcards are supported in the file name only`);
  const re = globToRegExp(basename(full));
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    names = [];
  }
  return names
    .filter((n) => re.test(n))
    .sort()
    .map((n) => join(dir, n));
}

function readLines(file: string, depth: number, where: string | null, out: Line[]): void {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const why = e instanceof Error && "code" in e ? String((e as { code: unknown }).code) : String(e);
    throw new KeepalivedConfError(`${where ? `${where}: ` : ""}cannot read ${file} (${why})`);
  }
  text.split("\n").forEach((raw, index) => {
    const at = `${file}:${index + 1}`;
    const words = splitWords(raw, at);
    if (words.length === 0) return;
    if (words[0] === "include") {
      if (words.length !== 2) throw new KeepalivedConfError(`${at}: include takes one file name or pattern`);
      if (depth >= MAX_INCLUDE_DEPTH) throw new KeepalivedConfError(`${at}: include nested more than ${MAX_INCLUDE_DEPTH} deep`);
      for (const f of includeFiles(words[1], file, at)) readLines(f, depth + 1, at, out);
      return;
    }
    out.push({ words, file, line: index + 1 });
  });
}

/** Reads `file` (and what it includes) into statements; throws KeepalivedConfError naming file:line. */
export function readStatements(file: string): Statement[] {
  const lines: Line[] = [];
  readLines(file, 0, null, lines);
  // Split lines further at braces: "a b { c d }" is "a b {", "c d", "}".
  const flat: Line[] = [];
  for (const l of lines) {
    let current: string[] = [];
    for (const w of l.words) {
      if (w === "{") {
        current.push(w);
        flat.push({ ...l, words: current });
        current = [];
      } else if (w === "}") {
        if (current.length > 0) flat.push({ ...l, words: current });
        flat.push({ ...l, words: ["}"] });
        current = [];
      } else current.push(w);
    }
    if (current.length > 0) flat.push({ ...l, words: current });
  }
  let i = 0;
  const parseBlock = (opener: Line | null): Statement[] => {
    const out: Statement[] = [];
    while (i < flat.length) {
      const l = flat[i++];
      if (l.words.length === 1 && l.words[0] === "}") {
        if (!opener) throw new KeepalivedConfError(`${l.file}:${l.line}: "}" closes no block`);
        return out;
      }
      let words = l.words;
      // "{" alone on the next line opens this statement's block.
      const opensHere = words[words.length - 1] === "{";
      const opensNext = !opensHere && i < flat.length && flat[i].words.length === 1 && flat[i].words[0] === "{";
      if (opensHere || opensNext) {
        if (opensNext) i++;
        if (opensHere) words = words.slice(0, -1);
        if (words.length === 0) throw new KeepalivedConfError(`${l.file}:${l.line}: "{" opens a block with no keyword`);
        out.push({ words, file: l.file, line: l.line, block: parseBlock(l) });
      } else {
        out.push({ words, file: l.file, line: l.line });
      }
    }
    if (opener) throw new KeepalivedConfError(`${opener.file}:${opener.line}: block "${opener.words[0]}" is not closed (missing "}")`);
    return out;
  };
  return parseBlock(null);
}
