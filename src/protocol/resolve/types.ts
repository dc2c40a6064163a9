// The shapes resolution hands to its callers (the transfer engine, /api/resolve)
// and the timing that makes it fast: holders answer within tens of ms, scaled
// by their load, and a miss is decided in RESOLVE_MISS_MS.

import {
  RESOLVE_ANSWER_JITTER_MS, RESOLVE_ANSWER_LOAD_MS, RESOLVE_MISS_MS, RESOLVE_RETRY_MS, RESOLVE_SETTLE_MS,
  RESOLVE_THIRD_PARTY_MS_MAX, RESOLVE_THIRD_PARTY_MS_MIN
} from '../../limits'
import type { ContentRef, PieceRanges } from '../content'

export interface Holder {
  nodeId: string
  /** `http://address:port`: the peer's HTTP side, where pieces are fetched. */
  baseUrl: string
  address: string
  httpPort: number
  /** Pieces it holds; null: all. */
  pieces: PieceRanges | null
  /** Its serving load in [0, 1] when it answered. */
  load: number
  /** When its answer arrived, ms after the lookup began. */
  answeredMs: number
}

export interface Download extends Holder {
  /** Pieces already verified there (fetchable now). */
  pieces: PieceRanges
  doneBytes: number
  totalBytes: number | null
}

/** The designated provider: the node that fetches from the internet for the LAN. */
export interface ProviderRef {
  nodeId: string
  address: string
  httpPort: number
  udpPort: number
  baseUrl: string
  /** This node is the provider. */
  self: boolean
}

/** What resolution knows of the provider (implemented by the election). */
export interface ProviderView {
  current (): ProviderRef | null
}

export type Outcome =
  /** Holders cover every wanted piece. */
  | 'hit'
  /** Holders have some of the pieces. */
  | 'partial'
  /** Nobody holds it, but a peer is fetching it: follow that download. */
  | 'downloading'
  /** Nobody on the LAN has it: ask the provider (or fetch it yourself if you are the provider). */
  | 'miss'

export interface Resolution {
  content: ContentRef
  /** Wanted pieces; null: all. */
  pieces: PieceRanges | null
  requestId: number
  outcome: Outcome
  /** Best first: those covering the request, then by load. */
  holders: Holder[]
  downloads: Download[]
  provider: (ProviderRef & { via: string }) | null
  elapsedMs: number
  /** NEED rounds sent (1 + retries). */
  rounds: number
}

export type FollowEvent =
  | { type: 'progress', doneBytes: number, totalBytes: number | null, pieces: PieceRanges }
  | { type: 'complete' }
  /** No word from the downloader for RESOLVE_FOLLOW_EXPIRE_MS. */
  | { type: 'lost' }

export interface ResolveTiming {
  /** Uniform answer delay of an idle holder. */
  answerJitterMs: number
  /** Extra delay at full load. */
  answerLoadMs: number
  thirdPartyMsMin: number
  thirdPartyMsMax: number
  /** NEED re-sent to the silent peers after this, `retries` times. */
  retryMs: number
  retries: number
  /** Partial and downloading outcomes are reported from here on. */
  settleMs: number
  missMs: number
}

export const DEFAULT_TIMING: ResolveTiming = {
  answerJitterMs: RESOLVE_ANSWER_JITTER_MS,
  answerLoadMs: RESOLVE_ANSWER_LOAD_MS,
  thirdPartyMsMin: RESOLVE_THIRD_PARTY_MS_MIN,
  thirdPartyMsMax: RESOLVE_THIRD_PARTY_MS_MAX,
  retryMs: RESOLVE_RETRY_MS,
  retries: 2,
  settleMs: RESOLVE_SETTLE_MS,
  missMs: RESOLVE_MISS_MS
}

/** The McAfee seed: answers after 0-2 000 ms, a miss after 2 200 ms, no retries. The benchmark's baseline. */
export const SEED_TIMING: ResolveTiming = {
  answerJitterMs: 2_000,
  answerLoadMs: 0,
  thirdPartyMsMin: 0,
  thirdPartyMsMax: 2_000,
  retryMs: 2_200,
  retries: 0,
  settleMs: 2_200,
  missMs: 2_200
}

export const baseUrlOf = (address: string, port: number): string =>
  `http://${address.includes(':') ? `[${address}]` : address}:${port}`
