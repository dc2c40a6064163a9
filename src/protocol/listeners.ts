// Listeners of one kind of event: on() returns the unsubscribe function;
// emit() calls each on a copy of the set (a listener may unsubscribe), and
// with a log, a listener that throws is logged and the others still run.

import type { Logger } from '../log'

export interface Listeners<E> {
  on (fn: (e: E) => void): () => void
  emit (e: E): void
}

export function listeners<E> (log?: Logger, what = 'listener'): Listeners<E> {
  const set = new Set<(e: E) => void>()
  return {
    on (fn) {
      set.add(fn)
      return () => { set.delete(fn) }
    },
    emit (e) {
      for (const fn of [...set]) {
        if (!log) fn(e)
        else {
          try { fn(e) } catch (err) { log.error(`${what} failed`, { err }) }
        }
      }
    }
  }
}
