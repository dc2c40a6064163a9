// Streams as an agent service: the Streams of this node on the peer link,
// ingest and playout on the HTTP port, /api/streams, its piece of
// /api/status, /metrics and the status page.

import type { Config } from '../config'
import type { Hal, Timer } from '../hal'
import { sendJson, type HttpServer, type Metrics, type PageSection } from '../http'
import type { Identity } from '../identity'
import type { Logger } from '../log'
import type { PeerDirectory } from '../protocol'
import type { FramePool, LinkHost } from '../protocol/link'
import { realCrypto } from './batches'
import { ingest, type Ingest } from './ingest'
import { createLinkTransport } from './link-transport'
import { playout, type PlayoutState } from './playout'
import { registerStreamMetrics, sessionStatus, treePage } from './report'
import { settingsFromConfig } from './settings'
import { createStreams, type Streams } from './streams'

export interface StreamServiceOptions {
  hal: Hal
  identity: Identity
  config: Config['stream']
  log: Logger
  http: HttpServer
  metrics: Metrics
  links: LinkHost
  directory: PeerDirectory
  /** The link host's frame pool: chunks are received into it and kept there. */
  pool?: FramePool
}

const PLAYER_TICK_MS = 250

export type StreamService = ReturnType<typeof createStreamService>

export function createStreamService (o: StreamServiceOptions) {
  const { hal, log } = o
  const clock = hal.clock
  const startedMs = clock.nowMs()
  const state: PlayoutState = { players: new Set() }
  const players = state.players
  const ingests = new Set<Ingest>()
  let timer: Timer | null = null
  const streams: Streams = createStreams({
    selfId: o.identity.nodeId,
    clock,
    random: hal.random,
    transport: createLinkTransport(o.links, o.directory, log),
    settings: settingsFromConfig(o.config),
    crypto: realCrypto,
    uptimeS: () => Math.floor((clock.nowMs() - startedMs) / 1000),
    log,
    pool: o.pool
  }, o.identity)

  function playerCounts (): Map<string, number> {
    const m = new Map<string, number>()
    for (const p of players) m.set(p.streamId, (m.get(p.streamId) ?? 0) + 1)
    return m
  }

  function list (): Array<Record<string, unknown>> {
    const now = clock.nowMs()
    return streams.list().map((s) => sessionStatus(s, [...players].filter((p) => p.streamId === s.streamId), now))
  }

  o.http.route('GET', '/api/streams', ({ res }) => { sendJson(res, 200, { streams: list() }) })
  o.http.route('POST', '/stream/:name', (ctx) => {
    ingests.add(ingest(ctx, streams, { token: o.config.pushToken, clock, log, onDone: (i) => { ingests.delete(i) } }))
  }, { longBody: true })
  o.http.route('GET', '/stream/:name', (ctx) => playout(ctx, streams, state, clock))
  registerStreamMetrics(o.metrics, () => streams.list(), playerCounts)

  return {
    name: 'streams',
    streams,
    list,
    async start (): Promise<void> {
      streams.start()
      timer = clock.setInterval(() => { for (const p of players) p.pump() }, PLAYER_TICK_MS)
    },
    async stop (): Promise<void> {
      timer?.cancel()
      for (const i of [...ingests]) i.stop()
      for (const p of [...players]) p.close()
      streams.stop()
    },
    status: (): unknown => ({ players: players.size, ingests: ingests.size, counters: streams.counters, streams: list() }),
    page: (): PageSection | null => treePage(streams.list(), o.identity.nodeId)
  }
}
