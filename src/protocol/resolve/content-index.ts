// What this node holds or is downloading: the question every NEED asks. The
// transfer engine (content distribution) implements ContentIndex over its
// flash cache and downloads; MemoryContentIndex is the in-memory twin for
// tests, simulations and benchmarks.

import { CanopyError } from '../../errors'
import type { ContentRef, PieceRanges } from '../content'
import { listeners } from '../listeners'

export type LocalContent =
  /** Verified pieces held (null: all of them). */
  | { state: 'have', pieces: PieceRanges | null }
  /** Being fetched: pieces already verified and servable, bytes done of total (null: unknown). */
  | { state: 'downloading', pieces: PieceRanges, doneBytes: number, totalBytes: number | null }

export interface ContentIndex {
  /** What this node can offer for the content, or null. Called for every NEED: keep it cheap. */
  lookup (content: ContentRef): LocalContent | null
  /** Serving load in [0, 1]; busier nodes answer later, so load spreads without a scheduler. */
  load (): number
  /** Something about this content changed (progress, completion, removal). Returns the unsubscribe function. */
  on (listener: (content: ContentRef) => void): () => void
}

/** Holds nothing, offers nothing: the agent's index until the transfer engine provides one. */
export const NO_CONTENT: ContentIndex = { lookup: () => null, load: () => 0, on: () => () => {} }

/** Entries held by the in-memory index (tests and simulations only need a few). */
export const MEMORY_INDEX_COUNT_MAX = 4_096

export class MemoryContentIndex implements ContentIndex {
  readonly #entries = new Map<ContentRef, LocalContent>()
  readonly #listeners = listeners<ContentRef>()
  #currentLoad = 0

  lookup (content: ContentRef): LocalContent | null { return this.#entries.get(content) ?? null }
  load (): number { return this.#currentLoad }
  on (listener: (c: ContentRef) => void): () => void { return this.#listeners.on(listener) }

  setLoad (load: number): void { this.#currentLoad = Math.min(1, Math.max(0, load)) }

  /** Holds these pieces (null: all) of the content. */
  hold (content: ContentRef, pieces: PieceRanges | null = null): void { this.#set(content, { state: 'have', pieces }) }

  startDownload (content: ContentRef, totalBytes: number | null = null): void {
    this.#set(content, { state: 'downloading', pieces: [], doneBytes: 0, totalBytes })
  }

  progress (content: ContentRef, doneBytes: number, pieces?: PieceRanges): void {
    const e = this.#entries.get(content)
    if (e?.state !== 'downloading') throw new CanopyError('ASSERTION', `no download of ${content}`)
    this.#set(content, { ...e, doneBytes, pieces: pieces ?? e.pieces })
  }

  /** The download completed: every piece is held. */
  finish (content: ContentRef): void { this.#set(content, { state: 'have', pieces: null }) }

  remove (content: ContentRef): void {
    if (this.#entries.delete(content)) this.#listeners.emit(content)
  }

  #set (content: ContentRef, value: LocalContent): void {
    if (!this.#entries.has(content) && this.#entries.size >= MEMORY_INDEX_COUNT_MAX) throw new CanopyError('LIMIT_REACHED', 'content index full')
    this.#entries.set(content, value)
    this.#listeners.emit(content)
  }
}
