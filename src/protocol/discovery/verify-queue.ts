// Fetching and verifying self-descriptions, bounded: a few fetches in flight,
// a short queue behind them, one request per LOCATION at a time, and one
// fetch per LOCATION per DESCRIBE_REFETCH_MS whatever its outcome. So a flood
// of forged NOTIFYs costs us at most a few small fetches, never a pile-up.

import { CanopyError, type ErrorCode } from '../../errors'
import type { Clock, Random } from '../../hal'
import {
  DESCRIBE_FETCHES_CONCURRENT_MAX, DESCRIBE_QUEUE_COUNT_MAX, DESCRIBE_RECENT_COUNT_MAX, DESCRIBE_REFETCH_MS
} from '../../limits'
import type { Logger } from '../../log'
import { lruSet } from '../lru'
import { verifyDescribe, type VerifiedDescribe } from './describe'
import type { DescribeFetcher } from './fetcher'
import type { GetTarget } from './http-get'

export interface Candidate {
  target: GetTarget
  /** The node id the announcement claimed (SSDP), or null (static peers). */
  expectNodeId: string | null
  /** The address it was heard from, which the description must list; null for static peers. */
  expectAddress: string | null
  onVerified (v: VerifiedDescribe): void
}

export type RequestOutcome = 'queued' | 'in-flight' | 'backoff' | 'full' | 'closed'

export interface VerifyStats {
  requested: number
  verified: number
  failed: Partial<Record<ErrorCode, number>>
  refused: { 'in-flight': number, backoff: number, full: number }
}

const keyOf = (t: GetTarget): string => `${t.host}:${t.port}${t.path}`

export class VerifyQueue {
  readonly stats: VerifyStats = { requested: 0, verified: 0, failed: {}, refused: { 'in-flight': 0, backoff: 0, full: 0 } }
  readonly #waiting: Array<{ key: string, c: Candidate }> = []
  readonly #busy = new Set<string>()
  /** LOCATION → monotonic ms before which it is not fetched again. Map order = insertion order, oldest first. */
  readonly #recent = new Map<string, number>()
  #running = 0
  #closed = false

  readonly #clock: Clock
  readonly #random: Random
  readonly #fetcher: DescribeFetcher
  readonly #log: Logger
  constructor (clock: Clock, random: Random, fetcher: DescribeFetcher, log: Logger) {
    this.#clock = clock
    this.#random = random
    this.#fetcher = fetcher
    this.#log = log
  }

  request (c: Candidate): RequestOutcome {
    if (this.#closed) return 'closed'
    const key = keyOf(c.target)
    if (this.#busy.has(key)) { this.stats.refused['in-flight']++; return 'in-flight' }
    const until = this.#recent.get(key)
    if (until !== undefined) {
      if (this.#clock.nowMs() < until) { this.stats.refused.backoff++; return 'backoff' }
      this.#recent.delete(key)
    }
    if (this.#waiting.length >= DESCRIBE_QUEUE_COUNT_MAX) { this.stats.refused.full++; return 'full' }
    this.stats.requested++
    this.#busy.add(key)
    this.#waiting.push({ key, c })
    this.#pump()
    return 'queued'
  }

  get inFlight (): number { return this.#running }
  get queued (): number { return this.#waiting.length }

  close (): void {
    this.#closed = true
    this.#waiting.length = 0
  }

  #pump (): void {
    while (!this.#closed && this.#running < DESCRIBE_FETCHES_CONCURRENT_MAX && this.#waiting.length > 0) {
      const next = this.#waiting.shift()!
      this.#running++
      this.#run(next.key, next.c).finally(() => {
        this.#running--
        this.#busy.delete(next.key)
        this.#pump()
      }).catch(() => {})
    }
  }

  async #run (key: string, c: Candidate): Promise<void> {
    const nonce = this.#random.bytes(16).toString('base64url')
    const path = `${c.target.path}${c.target.path.includes('?') ? '&' : '?'}nonce=${nonce}`
    let verified: VerifiedDescribe
    try {
      const body = await this.#fetcher.fetch({ ...c.target, path })
      verified = verifyDescribe(body, { nodeId: c.expectNodeId, nonce, address: c.expectAddress })
    } catch (err) {
      const coded = CanopyError.from(err, 'DESCRIBE_FETCH_FAILED')
      this.stats.failed[coded.code] = (this.stats.failed[coded.code] ?? 0) + 1
      this.#remember(key)
      this.#log.debug('describe refused', { location: key, err: coded })
      return
    }
    this.#remember(key)
    if (this.#closed) return
    this.stats.verified++
    c.onVerified(verified)
  }

  #remember (key: string): void {
    lruSet(this.#recent, key, this.#clock.nowMs() + DESCRIBE_REFETCH_MS, DESCRIBE_RECENT_COUNT_MAX)
  }
}
