// Listeners of one kind of event: on() returns the unsubscribe function;
// emit() calls each on a copy of the set (a listener may unsubscribe), and
// with a log, a listener that throws is logged and the others still run.

import type { Logger } from '../log'

export class Listeners<E> {
  readonly #set = new Set<(e: E) => void>()
  constructor (readonly log?: Logger, readonly what = 'listener') {}

  on (fn: (e: E) => void): () => void {
    this.#set.add(fn)
    return () => { this.#set.delete(fn) }
  }

  emit (e: E): void {
    for (const fn of [...this.#set]) {
      if (this.log === undefined) fn(e)
      else {
        try { fn(e) } catch (err) { this.log.error(`${this.what} failed`, { err }) }
      }
    }
  }
}
