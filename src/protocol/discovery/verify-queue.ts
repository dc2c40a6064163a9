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

/** What to fetch and what it must say: `nodeId` and `address` as in DescribeExpectation (the nonce is ours). */
export interface Candidate {
  target: GetTarget
  /** The node id the announcement claimed (SSDP), or null (static peers). */
  nodeId: string | null
  /** The address it was heard from, which the description must list; null for static peers. */
  address: string | null
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

export interface VerifyQueue {
  readonly stats: VerifyStats
  request (c: Candidate): RequestOutcome
  readonly inFlight: number
  readonly queued: number
  close (): void
}

export function verifyQueue (clock: Clock, random: Random, fetcher: DescribeFetcher, log: Logger): VerifyQueue {
  const stats: VerifyStats = { requested: 0, verified: 0, failed: {}, refused: { 'in-flight': 0, backoff: 0, full: 0 } }
  /** [LOCATION, candidate] in arrival order. */
  const waiting: Array<[string, Candidate]> = []
  const busy = new Set<string>()
  /** LOCATION → monotonic ms before which it is not fetched again (recency order, bounded). */
  const recent = new Map<string, number>()
  let running = 0
  let closed = false

  const remember = (key: string): void => { lruSet(recent, key, clock.nowMs() + DESCRIBE_REFETCH_MS, DESCRIBE_RECENT_COUNT_MAX) }

  const run = async (key: string, c: Candidate): Promise<void> => {
    const nonce = random.bytes(16).toString('base64url')
    const path = `${c.target.path}${c.target.path.includes('?') ? '&' : '?'}nonce=${nonce}`
    let verified: VerifiedDescribe
    try {
      const body = await fetcher.fetch({ ...c.target, path })
      verified = verifyDescribe(body, { ...c, nonce })
    } catch (err) {
      const coded = CanopyError.from(err, 'DESCRIBE_FETCH_FAILED')
      stats.failed[coded.code] = (stats.failed[coded.code] ?? 0) + 1
      log.debug('describe refused', { location: key, err: coded })
      return
    } finally {
      remember(key)
    }
    if (closed) return
    stats.verified++
    c.onVerified(verified)
  }

  const pump = (): void => {
    while (!closed && running < DESCRIBE_FETCHES_CONCURRENT_MAX && waiting.length > 0) {
      const [key, c] = waiting.shift()!
      running++
      run(key, c).finally(() => {
        running--
        busy.delete(key)
        pump()
      }).catch(() => {})
    }
  }

  return {
    stats,
    request (c) {
      if (closed) return 'closed'
      const key = keyOf(c.target)
      const refused = busy.has(key) ? 'in-flight' : clock.nowMs() < (recent.get(key) ?? -Infinity) ? 'backoff' : waiting.length >= DESCRIBE_QUEUE_COUNT_MAX ? 'full' : null
      if (refused) {
        stats.refused[refused]++
        return refused
      }
      stats.requested++
      busy.add(key)
      waiting.push([key, c])
      pump()
      return 'queued'
    },
    get inFlight () { return running },
    get queued () { return waiting.length },
    close () {
      closed = true
      waiting.length = 0
    }
  }
}
