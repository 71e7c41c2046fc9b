/**
 * Two scans of raw JSON text that JSON.parse cannot do: finding duplicate keys (JSON.parse keeps
 * the last value silently, and a reviver never sees the earlier ones), and reading one top-level
 * string field of a body that is too large or not valid JSON, for correlation only. Both are
 * linear, iterative (no recursion to overflow) and build no objects from the input's keys.
 */

export type JsonPath = Array<string | number>;

interface Container {
  parent?: Container;
  /** Where it sits in its parent: a key or an index. */
  segment?: string | number;
  /** Keys seen so far; absent for an array. */
  keys?: Set<string>;
  expectingKey: boolean;
  key?: string;
  index: number;
}

/** Index just past the closing quote of the string starting at `start`, or -1 when unterminated. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c) i++;
    else if (c === 0x22) return i + 1;
  }
  return -1;
}

const decode = (token: string): string | undefined => {
  try {
    const value: unknown = JSON.parse(token);
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
};

/** Built only for a duplicate: copying paths per container would be quadratic in the depth. */
function pathOf(container: Container): JsonPath {
  const path: JsonPath = [];
  for (let c: Container | undefined = container; c?.segment !== undefined; c = c.parent) path.push(c.segment);
  return path.reverse();
}

/**
 * The path of every member whose key repeats an earlier key of the same object, in document
 * order. `text` must be valid JSON (JSON.parse accepted it). Keys compare by value, so "a" and
 * "\u0061" are the same key.
 */
export function findDuplicateKeys(text: string): JsonPath[] {
  const duplicates: JsonPath[] = [];
  const stack: Container[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const top = stack.at(-1);
    if (c === '{' || c === '[') {
      stack.push({
        ...(top && { parent: top, segment: top.keys ? (top.key ?? '') : top.index }),
        ...(c === '{' && { keys: new Set<string>() }),
        expectingKey: c === '{',
        index: 0,
      });
      i++;
    } else if (c === '}' || c === ']') {
      stack.pop();
      i++;
    } else if (c === ',') {
      if (top?.keys) top.expectingKey = true;
      else if (top) top.index++;
      i++;
    } else if (c === '"') {
      const end = stringEnd(text, i);
      if (end < 0) break;
      if (top?.keys && top.expectingKey) {
        const key = decode(text.slice(i, end)) ?? '';
        if (top.keys.has(key)) duplicates.push([...pathOf(top), key]);
        top.keys.add(key);
        top.key = key;
        top.expectingKey = false;
      }
      i = end;
    } else {
      i++;
    }
  }
  return duplicates;
}

/** What a lenient read of a top-level field found. */
export type LenientField = { found: 'string'; value: string } | { found: 'other' } | { found: 'none' };

const WS = new Set([' ', '\t', '\n', '\r']);

/**
 * Reads the first top-level member named `name` of a JSON object text, even when the text is
 * invalid after it or too large to accept; stops at the first thing that is not JSON. Only
 * for correlation: never act on what it returns.
 */
export function readTopLevelField(text: string, name: string): LenientField {
  let i = 0;
  const ws = () => {
    while (i < text.length && WS.has(text[i] as string)) i++;
  };
  /** Skips one value; false when the text stops being JSON-shaped. */
  const skipValue = (): boolean => {
    const c = text[i];
    if (c === '"') {
      i = stringEnd(text, i);
      return i > 0;
    }
    if (c === '{' || c === '[') {
      let depth = 0;
      while (i < text.length) {
        const d = text[i];
        if (d === '"') {
          i = stringEnd(text, i);
          if (i < 0) return false;
          continue;
        }
        if (d === '{' || d === '[') depth++;
        else if (d === '}' || d === ']') depth--;
        i++;
        if (depth === 0) return true;
      }
      return false;
    }
    const start = i;
    while (i < text.length && !WS.has(text[i] as string) && !',}]'.includes(text[i] as string)) i++;
    return i > start;
  };

  ws();
  if (text[i] !== '{') return { found: 'none' };
  i++;
  for (;;) {
    ws();
    if (text[i] !== '"') return { found: 'none' };
    const keyEnd = stringEnd(text, i);
    if (keyEnd < 0) return { found: 'none' };
    const key = decode(text.slice(i, keyEnd));
    i = keyEnd;
    ws();
    if (text[i] !== ':') return { found: 'none' };
    i++;
    ws();
    if (key === name) {
      if (text[i] !== '"') return { found: 'other' };
      const end = stringEnd(text, i);
      const value = end < 0 ? undefined : decode(text.slice(i, end));
      return value === undefined ? { found: 'none' } : { found: 'string', value };
    }
    if (!skipValue()) return { found: 'none' };
    ws();
    if (text[i] !== ',') return { found: 'none' };
    i++;
  }
}
