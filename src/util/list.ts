/** A comma- or whitespace-separated list (`a, b c`): entries in order, empty ones dropped. */
export function splitList(value: string): string[] {
  return value.split(/[\s,]+/).filter((s) => s.length > 0);
}
