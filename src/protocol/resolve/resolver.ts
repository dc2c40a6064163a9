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

export class Resolver {
  readonly name = 'resolver'
  readonly requester: Requester
  readonly responder: Responder
  readonly timing: ResolveTiming

  constructor (o: ResolverOptions) {
    this.timing = { ...DEFAULT_TIMING, ...o.timing }
    const common = { wire: o.wire, provider: o.provider, clock: o.hal.clock, random: o.hal.random, timing: this.timing, log: o.log }
    this.requester = requester(common)
    this.responder = responder({ ...common, index: o.index, httpPort: o.httpPort })
  }

  async start (): Promise<void> {
    this.requester.start()
    this.responder.start()
  }

  async stop (): Promise<void> {
    this.requester.stop()
    this.responder.stop()
  }

  resolve (content: ContentRef, options?: ResolveOptions): Promise<Resolution> {
    return this.requester.resolve(content, options)
  }

  follow (download: Pick<Download, 'nodeId' | 'address'> & { udpPort?: number }, content: ContentRef, onEvent: (e: FollowEvent) => void): FollowHandle {
    return this.requester.follow(download, content, onEvent)
  }

  /** Lookups (by outcome, retries), answers sent (have, downloading, provider, third party, cancelled, followers). */
  status (): Record<string, unknown> {
    return { ...this.requester.stats, active: this.requester.active, answers: this.responder.stats, pendingAnswers: this.responder.pendingCount }
  }
}
