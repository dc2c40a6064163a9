// A Map kept in recency order (Map order is insertion order) and bounded: the
// caches and per-source tables of the LAN protocol use it.

/**
 * Put key into map, bounded at max: the key moves to the newest end; a new
 * key at the bound first pushes out the least recent one. Returns value.
 */
export function lruSet<K, V> (map: Map<K, V>, key: K, value: V, max: number): V {
  map.delete(key)
  if (map.size >= max) map.delete(map.keys().next().value as K)
  map.set(key, value)
  return value
}
