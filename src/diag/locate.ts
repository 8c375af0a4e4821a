// Correlates JSON pointers with the YAML source, once, at the edge (like butane's report).
import { isMap, isSeq, isScalar, isPair, LineCounter, type Document, type Node, type Pair, type YAMLMap } from "yaml";
import { pointerTokens, type Diagnostic } from "./diagnostic.js";

export interface SourceMap {
  file: string;
  document: Document | undefined;
  lineCounter: LineCounter;
}

/**
 * Finds the deepest node the pointer reaches. When the pointer names something missing, the closest
 * existing ancestor is used, so "missing key" errors point at the map that lacks the key.
 */
function resolve(doc: Document, pointer: string, atKey: boolean): [number, number] | undefined {
  let node: unknown = doc.contents;
  let range: [number, number] | undefined = rangeOf(node);
  const tokens = pointerTokens(pointer);
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const last = i === tokens.length - 1;
    if (isMap(node)) {
      const pair = keyIndex(node).get(token);
      if (!pair) return range;
      if (last && atKey) return rangeOf(pair.key) ?? range;
      node = pair.value ?? pair.key;
    } else if (isSeq(node)) {
      const item = node.items[Number(token)];
      if (item === undefined) return range;
      node = isPair(item) ? item.value : item;
    } else {
      return range;
    }
    range = rangeOf(node) ?? range;
  }
  return range;
}

/** Each mapping's pairs by key, built once: thousands of diagnostics may look into one mapping. */
const indexes = new WeakMap<object, Map<string, Pair>>();
function keyIndex(map: YAMLMap): Map<string, Pair> {
  let index = indexes.get(map);
  if (!index) {
    index = new Map();
    for (const p of map.items) if (isScalar(p.key) && !index.has(String(p.key.value))) index.set(String(p.key.value), p as Pair);
    indexes.set(map, index);
  }
  return index;
}

function rangeOf(node: unknown): [number, number] | undefined {
  const r = (node as Node | null)?.range;
  return r ? [r[0], r[1]] : undefined;
}

export function locate(map: SourceMap, diagnostics: Diagnostic[]): Diagnostic[] {
  return diagnostics.map((d) => {
    if (d.location) return d;
    const range = map.document ? resolve(map.document, d.pointer, d.atKey ?? false) : undefined;
    const pos = map.lineCounter.linePos(range ? range[0] : 0);
    // An empty document has no lines; the start of the file is the place to point at.
    return { ...d, location: { file: map.file, line: Math.max(1, pos.line), col: Math.max(1, pos.col) } };
  });
}
