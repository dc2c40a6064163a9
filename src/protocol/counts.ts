// Drop and message counters keyed by reason or type, as status() shows them.

/** A counter per name, all 0. */
export const zeroes = <K extends string>(keys: readonly K[]): Record<K, number> =>
  Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>

/** The counters that are not 0 (status pages show only those). */
export const nonZero = (counts: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0))
