/**
 * The strings of a CheckRequest (decode.ts), read from the request's bytes `buf` and `text`, the same
 * bytes as one latin1 string (one native call per request).
 *
 * Strings under 13 characters (most header names and many values) are cut from `text`: V8 copies a
 * substring that short, so nothing keeps the request text alive, and it spares a native utf8Slice
 * call (~120 ns) per field. Only bytes < 0x80 read the same in latin1 and UTF-8; anything else, and
 * longer strings, go through utf8Slice as protobufjs does.
 */
const SHORT = 13;

type SliceableBuffer = Buffer & { utf8Slice(start: number, end: number): string; latin1Slice(start: number, end: number): string };

/** The whole request as latin1, for readString's short strings. */
export function latin1(buf: Buffer): string {
  return (buf as SliceableBuffer).latin1Slice(0, buf.length);
}

/** `text` is `buf` as latin1, or '' when the caller did not make one (then every string is sliced natively). */
export function readString(buf: Buffer, text: string, from: number, to: number): string {
  if (to - from < SHORT && text.length !== 0) {
    let i = from;
    while (i < to && buf[i]! < 0x80) i++;
    if (i === to) return text.substring(from, to);
  }
  // utf8Slice is what Buffer#toString('utf8') and protobufjs end in, without their argument handling.
  return (buf as SliceableBuffer).utf8Slice(from, to);
}

/**
 * Header names seen before, by a hash of their bytes: the same few names arrive on every request,
 * and handing the pipeline the same string object spares decoding it and lets the header map reuse
 * its cached hash (building the map was a third of decoding). Only lower-case ASCII names up to 64
 * bytes are kept, 256 slots, a collision replaces the slot: bounded whatever a client sends, and a
 * name is no secret.
 */
const NAMES: Array<string | undefined> = new Array<string | undefined>(256).fill(undefined);
const MAX_NAME = 64;

/** Whether the last readName had a letter in A-Z (read right after the call; decoding is synchronous). */
export let nameHadUpper = false;

export function readName(buf: Buffer, text: string, from: number, to: number): string {
  const n = to - from;
  const slot = n === 0 ? 0 : (n * 31 + buf[from]! * 7 + buf[from + (n >> 1)]! * 3 + buf[to - 1]!) & 255;
  const known = NAMES[slot];
  if (known !== undefined && known.length === n) {
    let i = 0;
    while (i < n && known.charCodeAt(i) === buf[from + i]) i++;
    if (i === n) {
      nameHadUpper = false;
      return known;
    }
  }
  const s = readString(buf, text, from, to);
  let upper = false;
  let ascii = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) upper = true;
    else if (c > 0x7f) ascii = false;
  }
  if (!upper && ascii && n <= MAX_NAME) NAMES[slot] = s;
  nameHadUpper = upper;
  return s;
}
