// Resolution as one service: the requester (who has content X?) and the
// responder (I have it / I am fetching it / the provider is there) on the
// wire transport. This is the module the transfer engine calls:
//
//   const r = await resolver.resolve(contentId, { pieces })
//   r.outcome: hit | partial | downloading | miss
//   r.holders[i].baseUrl + which pieces; r.downloads[i] to follow(); r.provider
//
// and the ContentIndex it is given is how the engine tells resolution what
// this node holds or is downloading.

import type { Hal } from '../../hal'
import type { Logger } from '../../log'
import type { ContentRef } from '../content'
import type { WireTransport } from '../transport/transport'
import type { ContentIndex } from './content-index'
import { requester, type FollowHandle, type Requester, type ResolveOptions } from './requester'
import { responder, type Responder } from './responder'
import { DEFAULT_TIMING, type Download, type FollowEvent, type ProviderView, type Resolution, type ResolveTiming } from './types'

export interface ResolverOptions {
  hal: Hal
  wire: WireTransport
  index: ContentIndex
  provider: ProviderView
  /** This node's HTTP port, told to peers in answers (read when answering: it may be bound late). */
  httpPort: () => number
  log: Logger
  timing?: Partial<ResolveTiming>
}

export interface Resolver {
  readonly name: 'resolver'
  readonly requester: Requester
  readonly responder: Responder
  readonly timing: ResolveTiming
  start: () => Promise<void>
  stop: () => Promise<void>
  resolve: (content: ContentRef, options?: ResolveOptions) => Promise<Resolution>
  follow: (download: Pick<Download, 'nodeId' | 'address'> & { udpPort?: number }, content: ContentRef, onEvent: (e: FollowEvent) => void) => FollowHandle
  /** Lookups (by outcome, retries), answers sent (have, downloading, provider, third party, cancelled, followers). */
  status: () => Record<string, unknown>
}

export function createResolver (o: ResolverOptions): Resolver {
  const timing = { ...DEFAULT_TIMING, ...o.timing }
  // Each side takes what it needs of the options (wire, provider, log; index and httpPort).
  const common = { ...o, clock: o.hal.clock, random: o.hal.random, timing }
  const req = requester(common)
  const res = responder(common)
  return {
    name: 'resolver',
    requester: req,
    responder: res,
    timing,
    async start () { req.start(); res.start() },
    async stop () { req.stop(); res.stop() },
    resolve: req.resolve,
    follow: req.follow,
    status: () => ({ ...req.stats, active: req.active, answers: res.stats, pendingAnswers: res.pendingCount })
  }
}
