/**
 * The bounded LRU every in-process cache here keeps: a `Map`, whose insertion order is the
 * recency order (oldest first), so a hit moves its key to the newest end and an insertion
 * drops the oldest keys beyond the bound.
 */

/** Sets `key` at the newest end of `map`, then drops the oldest entries beyond `max`. */
export function lruSet<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > max) {
    const oldest = map.keys().next();
    if (oldest.done) break;
    map.delete(oldest.value);
  }
}

/** A hit: `key` (holding `value`) back to the newest end of `map`. */
export function lruTouch<K, V>(map: Map<K, V>, key: K, value: V): void {
  map.delete(key);
  map.set(key, value);
}
