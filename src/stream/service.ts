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
import { LinkTransport } from './link-transport'
import type { Player } from './player'
import { playout, type PlayoutState } from './playout'
import { registerStreamMetrics, sessionStatus, treePage } from './report'
import { settingsFromConfig } from './settings'
import { Streams } from './streams'

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

export class StreamService {
  readonly name = 'streams'
  readonly streams: Streams
  private readonly playout: PlayoutState = { players: new Set() }
  private readonly ingests = new Set<Ingest>()
  private timer: Timer | null = null
  private readonly startedMs: number

  constructor (private readonly o: StreamServiceOptions) {
    const { hal } = o
    this.startedMs = hal.clock.nowMs()
    const transport = new LinkTransport(o.links, o.directory, o.log)
    this.streams = new Streams({
      selfId: o.identity.nodeId,
      clock: hal.clock,
      random: hal.random,
      transport,
      settings: settingsFromConfig(o.config),
      crypto: realCrypto,
      uptimeS: () => Math.floor((hal.clock.nowMs() - this.startedMs) / 1000),
      log: o.log,
      pool: o.pool
    }, o.identity)
    o.http.route('GET', '/api/streams', ({ res }) => { sendJson(res, 200, { streams: this.list() }) })
    o.http.route('POST', '/stream/:name', (ctx) => {
      const it = ingest(ctx, this.streams, { token: o.config.pushToken, clock: hal.clock, log: o.log, onDone: (i) => { this.ingests.delete(i) } })
      this.ingests.add(it)
    }, { longBody: true })
    o.http.route('GET', '/stream/:name', (ctx) => playout(ctx, this.streams, this.playout, hal.clock))
    registerStreamMetrics(o.metrics, () => this.streams.list(), () => this.playerCounts())
  }

  async start (): Promise<void> {
    this.streams.start()
    this.timer = this.o.hal.clock.setInterval(() => { for (const p of this.playout.players) p.pump() }, PLAYER_TICK_MS)
  }

  async stop (): Promise<void> {
    this.timer?.cancel()
    for (const i of [...this.ingests]) i.stop()
    for (const p of [...this.playout.players]) p.close()
    this.streams.stop()
  }

  private playersOf (streamId: string): Player[] {
    return [...this.playout.players].filter((p) => p.streamId === streamId)
  }

  private playerCounts (): Map<string, number> {
    const m = new Map<string, number>()
    for (const p of this.playout.players) m.set(p.streamId, (m.get(p.streamId) ?? 0) + 1)
    return m
  }

  list (): Array<Record<string, unknown>> {
    const now = this.o.hal.clock.nowMs()
    return this.streams.list().map((s) => sessionStatus(s, this.playersOf(s.streamId), now))
  }

  status (): unknown {
    return { players: this.playout.players.size, ingests: this.ingests.size, counters: this.streams.counters, streams: this.list() }
  }

  page (): PageSection | null {
    return treePage(this.streams.list(), this.o.identity.nodeId)
  }
}
