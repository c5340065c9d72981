// Address text as glibc reads and writes it (inet_aton, inet_pton, inet_ntop), so that
// lvsadm accepts and prints exactly the addresses ipvsadm does.

const IS_C_SPACE = /[ \t\n\v\f\r]/;

/**
 * glibc inet_aton: 1 to 4 parts, each decimal, octal (leading 0) or hex (0x); the last part
 * fills the remaining bytes; anything after a whitespace character is ignored.
 * Returns the address as an unsigned 32-bit number, or undefined.
 */
export function inetAton(text: string): number | undefined {
  const parts: number[] = [];
  let i = 0;
  let value = 0;
  for (;;) {
    if (!isDigit(text[i])) return undefined;
    let base = 10;
    let sawDigit = false;
    if (text[i] === "0") {
      i++;
      if (text[i] === "x" || text[i] === "X") {
        base = 16;
        i++;
      } else {
        base = 8;
        sawDigit = true;
      }
    }
    value = 0;
    for (;;) {
      const c = text[i];
      if (isDigit(c)) {
        if (base === 8 && (c === "8" || c === "9")) return undefined;
        value = value * base + (c!.charCodeAt(0) - 48);
      } else if (base === 16 && c !== undefined && isHexDigit(c)) {
        value = value * 16 + parseInt(c, 16);
      } else {
        break;
      }
      if (value > 0xffffffff) return undefined;
      sawDigit = true;
      i++;
    }
    if (!sawDigit) return undefined;
    if (text[i] !== ".") break;
    if (parts.length > 2 || value > 0xff) return undefined;
    parts.push(value);
    i++;
  }
  const rest = text[i];
  if (rest !== undefined && !IS_C_SPACE.test(rest)) return undefined;
  if (value > ATON_LAST_PART_LIMITS[parts.length]!) return undefined;
  let result = value;
  for (let index = 0; index < parts.length; index++) result += parts[index]! * 2 ** (24 - 8 * index);
  return result >>> 0;
}

/** The largest value of inet_aton's last part, by the number of parts before it. */
const ATON_LAST_PART_LIMITS = [0xffffffff, 0xffffff, 0xffff, 0xff];

/** glibc inet_pton(AF_INET): exactly four decimal parts 0..255, no leading zeros. */
export function inetPton4(text: string): number | undefined {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!match) return undefined;
  let result = 0;
  for (let k = 1; k <= 4; k++) {
    const part = match[k]!;
    if (part.length > 1 && part[0] === "0") return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    result = result * 256 + n;
  }
  return result;
}

/** glibc inet_pton(AF_INET6): eight 16-bit words, or undefined. */
export function inetPton6(text: string): number[] | undefined {
  // Every IPv6 text has a colon; most words read here are IPv4 addresses.
  if (!text.includes(":")) return undefined;
  const words: number[] = [];
  let gapAt = -1;
  let i = 0;
  if (text.startsWith(":")) {
    if (!text.startsWith("::")) return undefined;
    i = 1;
  }
  let groupStart = i;
  // The hex digits of the group being read (no closure: this runs for every address word).
  let group = "";
  for (; i < text.length; i++) {
    const c = text[i]!;
    if (isHexDigit(c)) {
      if (group.length === 4) return undefined;
      group += c;
      continue;
    }
    if (c === ":") {
      if (group.length === 0) {
        // "::" marks the gap; any other empty group is an error.
        if (gapAt !== -1 || i !== groupStart) return undefined;
        gapAt = words.length;
      } else {
        if (i + 1 >= text.length) return undefined; // a trailing single ':'
        if (words.length >= 8) return undefined;
        words.push(parseInt(group, 16));
        group = "";
      }
      groupStart = i + 1;
      continue;
    }
    if (c === "." && words.length <= 6) {
      const v4 = inetPton4(text.slice(groupStart));
      if (v4 === undefined) return undefined;
      words.push(v4 >>> 16, v4 & 0xffff);
      group = "";
      i = text.length;
      break;
    }
    return undefined;
  }
  if (group.length > 0) {
    if (words.length >= 8) return undefined;
    words.push(parseInt(group, 16));
  }
  if (gapAt !== -1) {
    if (words.length > 7) return undefined;
    const zeros = new Array<number>(8 - words.length).fill(0);
    words.splice(gapAt, 0, ...zeros);
  }
  return words.length === 8 ? words : undefined;
}

function isHexDigit(c: string): boolean {
  return (c >= "0" && c <= "9") || (c >= "a" && c <= "f") || (c >= "A" && c <= "F");
}

/** inet_ntoa / inet_ntop(AF_INET). */
export function formatIpv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 0xff}.${(value >>> 8) & 0xff}.${value & 0xff}`;
}

/** glibc inet_ntop(AF_INET6): longest run of two or more zero words shown as "::", first on ties. */
export function formatIpv6(words: readonly number[]): string {
  let bestBase = -1;
  let bestLen = 0;
  let curBase = -1;
  let curLen = 0;
  for (let k = 0; k < 8; k++) {
    if (words[k] === 0) {
      if (curBase === -1) {
        curBase = k;
        curLen = 1;
      } else {
        curLen++;
      }
    } else if (curBase !== -1) {
      if (bestBase === -1 || curLen > bestLen) [bestBase, bestLen] = [curBase, curLen];
      curBase = -1;
    }
  }
  if (curBase !== -1 && (bestBase === -1 || curLen > bestLen)) [bestBase, bestLen] = [curBase, curLen];
  if (bestBase !== -1 && bestLen < 2) bestBase = -1;
  let out = "";
  for (let k = 0; k < 8; k++) {
    if (bestBase !== -1 && k >= bestBase && k < bestBase + bestLen) {
      if (k === bestBase) out += ":";
      continue;
    }
    if (k !== 0) out += ":";
    if (k === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && words[5] === 0xffff))) {
      out += formatIpv4(((words[6]! << 16) | words[7]!) >>> 0);
      return out;
    }
    out += words[k]!.toString(16);
  }
  if (bestBase !== -1 && bestBase + bestLen === 8) out += ":";
  return out;
}

/** A parsed address literal: family plus the sort key ipvsadm compares (four big-endian words). */
export interface ParsedAddress {
  readonly family: 4 | 6;
  readonly text: string;
  /** nf_inet_addr as four host-order 32-bit words (IPv4 in the first word, the rest zero). */
  readonly words32: readonly [number, number, number, number];
}

/**
 * Addresses already read. Configurations repeat the same few thousand real-server and VIP
 * addresses across 250,000 lines, and parsing them was half the time of a large restore
 * and save. Bounded: emptied when it reaches PARSED_CACHE_SIZE.
 */
const parsedCache = new Map<string, ParsedAddress | undefined>();
const PARSED_CACHE_SIZE = 1 << 17;

/** Reads a model address (canonical or not): IPv6 if it parses as IPv6, otherwise inet_aton. */
export function parseAddress(text: string): ParsedAddress | undefined {
  const known = parsedCache.get(text);
  if (known !== undefined || parsedCache.has(text)) return known;
  if (parsedCache.size >= PARSED_CACHE_SIZE) parsedCache.clear();
  const parsed = parseAddressUncached(text);
  parsedCache.set(text, parsed);
  return parsed;
}

function parseAddressUncached(text: string): ParsedAddress | undefined {
  const v6 = inetPton6(text);
  if (v6) {
    return {
      family: 6,
      text: formatIpv6(v6),
      words32: [0, 2, 4, 6].map((k) => ((v6[k]! << 16) | v6[k + 1]!) >>> 0) as unknown as [number, number, number, number],
    };
  }
  const v4 = inetAton(text);
  if (v4 === undefined) return undefined;
  return { family: 4, text: formatIpv4(v4), words32: [v4, 0, 0, 0] };
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= "0" && c <= "9";
}
