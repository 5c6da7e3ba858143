/**
 * JSON.parse keeps the last of two equal keys in an object without a word: a JSONL row
 * `{"text": "...", "label": "pos", "label": "neg"}` silently became "neg", and a file whose rows all
 * repeat the key could collapse to one class. This finds the first key that appears twice in one
 * object of a text that is already known to be valid JSON.
 */

/** The first key repeated within one object of `json` (valid JSON), or undefined. */
export function duplicateKey(json: string): string | undefined {
  // one set of keys per open object; arrays push null (their strings are values, not keys)
  const open: (Set<string> | null)[] = [];
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '{') open.push(new Set());
    else if (c === '[') open.push(null);
    else if (c === '}' || c === ']') open.pop();
    else if (c === '"') {
      const start = i;
      for (i++; json[i] !== '"'; i++) if (json[i] === '\\') i++;
      let j = i + 1;
      while (j < json.length && (json[j] === ' ' || json[j] === '\t' || json[j] === '\n' || json[j] === '\r')) j++;
      const keys = open.at(-1);
      if (json[j] !== ':' || !keys) continue;
      // compare decoded keys: "label" and "\u006cabel" are the same key
      const key = JSON.parse(json.slice(start, i + 1)) as string;
      if (keys.has(key)) return key;
      keys.add(key);
    }
  }
  return undefined;
}
