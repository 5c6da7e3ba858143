/**
 * Key paths from outside (a `--set key.path=value`, a queue job's overrides) are applied to plain
 * objects. A part named `__proto__`, `constructor` or `prototype` would walk from the config into
 * Object.prototype: `__proto__.NODE_OPTIONS=x` once wrote onto every object of a long-lived worker,
 * which then refused every later job. No config key has these names, so they are refused outright,
 * and objects built from outside data have no prototype to walk into.
 */

/** Names that reach a prototype instead of a key of the object itself. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** The first forbidden part of a dotted key path, or undefined when it has none. */
export function forbiddenPart(path: readonly string[]): string | undefined {
  return path.find((p) => FORBIDDEN_KEYS.has(p));
}

/** An empty object with no prototype: a key read from it is its own or undefined, never inherited. */
export function bareObject<T = unknown>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/**
 * A deep copy of parsed data (YAML, JSON) whose objects have no prototype, refusing forbidden keys:
 * `refuse(path)` gets the path of the first one found and must throw.
 */
export function withoutPrototypes(value: unknown, refuse: (path: string[]) => never, path: string[] = []): unknown {
  if (Array.isArray(value)) return value.map((v, i) => withoutPrototypes(v, refuse, [...path, String(i)]));
  if (typeof value !== 'object' || value === null) return value;
  const out = bareObject();
  for (const [k, v] of Object.entries(value)) {
    if (FORBIDDEN_KEYS.has(k)) refuse([...path, k]);
    out[k] = withoutPrototypes(v, refuse, [...path, k]);
  }
  return out;
}
