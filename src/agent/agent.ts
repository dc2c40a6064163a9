// The composition root: builds the agent from a validated config and a HAL,
// and owns the order of start and stop. Modules never reach for globals; they
// get what they need from here.

import type { AddressInfo } from 'node:net'
import type { Config } from '../config'
import { CanopyError } from '../errors'
import { lanNicFor, parseIp, addressScope, type Hal } from '../hal'
import { HttpServer, Metrics } from '../http'
import { loadOrCreateIdentity, type Identity } from '../identity'
import { SHUTDOWN_MS_MAX } from '../limits'
import type { Logger } from '../log'
import { VERSION } from '../version'
import type { Service } from './service'
import { addStatusRoutes } from './status'

export interface AgentOptions {
  config: Config
  hal: Hal
  log: Logger
}

export class Agent {
  readonly services: Service[] = []
  readonly metrics = new Metrics()
  readonly http: HttpServer
  stopping = false
  #startedAtMs = 0
  #startedWallMs = 0
  #listening: AddressInfo | null = null

  private constructor (readonly config: Config, readonly hal: Hal, readonly log: Logger, readonly identity: Identity) {
    this.http = new HttpServer({
      host: config.http.host,
      port: config.http.port,
      connectionsMax: config.http.connectionsMax,
      headersTimeoutMs: config.http.headersTimeoutMs,
      requestTimeoutMs: Math.max(config.http.requestTimeoutMs, config.http.headersTimeoutMs),
      allow: (remote) => this.allows(remote),
      log: log.child('http')
    })
    addStatusRoutes(this)
    this.#registerMetrics()
  }

  static async create (options: AgentOptions): Promise<Agent> {
    const { config, hal, log } = options
    const { identity, created } = await loadOrCreateIdentity(hal.files, hal.random, hal.dataDir)
    log.info(created ? 'identity created' : 'identity loaded', { nodeId: identity.nodeId, publicKey: identity.publicKeyText })
    return new Agent(config, hal, log, identity)
  }

  /** Subsystems are added before start(), in start order. */
  add (service: Service): void {
    if (this.services.some((s) => s.name === service.name)) throw new CanopyError('ASSERTION', `service ${service.name} added twice`)
    this.services.push(service)
  }

  async start (): Promise<AddressInfo> {
    this.#startedAtMs = this.hal.clock.nowMs()
    this.#startedWallMs = this.hal.clock.wallMs()
    for (const s of this.services) await s.start?.()
    this.#listening = await this.http.listen()
    for (const s of this.services) await s.ready?.()
    this.log.info('listening', { address: this.#listening.address, port: this.#listening.port, statusPage: this.url })
    return this.#listening
  }

  /** The status page URL as a person on this box would type it. */
  get url (): string {
    const a = this.#listening
    if (a === null) return ''
    const wildcard = a.address === '0.0.0.0' || a.address === '::'
    const host = wildcard ? '127.0.0.1' : a.family === 'IPv6' ? `[${a.address}]` : a.address
    return `http://${host}:${a.port}/`
  }

  async stop (deadlineMs = SHUTDOWN_MS_MAX): Promise<void> {
    if (this.stopping) return
    this.stopping = true
    const end = this.hal.clock.nowMs() + deadlineMs
    const left = (): number => Math.max(0, end - this.hal.clock.nowMs())
    // Stop taking requests first, then the subsystems in reverse order.
    const httpClosed = this.http.close(Math.min(left(), deadlineMs / 2))
    for (const s of [...this.services].reverse()) {
      try {
        await s.stop?.(left())
      } catch (err) {
        this.log.warn('service did not stop cleanly', { service: s.name, err })
      }
    }
    await httpClosed
    await this.hal.close()
    this.log.info('stopped')
  }

  status (): Record<string, unknown> {
    const mem = process.memoryUsage()
    const out: Record<string, unknown> = {
      nodeId: this.identity.nodeId,
      name: this.config.name,
      version: VERSION,
      publicKey: this.identity.publicKeyText,
      uptimeSeconds: Math.round((this.hal.clock.nowMs() - this.#startedAtMs) / 1000),
      startedAt: new Date(this.#startedWallMs).toISOString(),
      memory: { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, heapTotalBytes: mem.heapTotal, externalBytes: mem.external },
      http: { url: this.url, ...this.http.counters },
      interfaces: this.hal.nics.list().map((n) => ({
        name: n.name,
        role: n.role,
        up: n.up,
        multicast: n.multicast,
        speedMbps: n.speedMbps,
        addresses: n.addresses.map((a) => `${a.address}/${a.prefixLength}`)
      }))
    }
    for (const s of this.services) {
      if (s.status === undefined) continue
      try {
        out[s.name] = s.status()
      } catch (err) {
        out[s.name] = { error: CanopyError.from(err, 'ASSERTION').message }
      }
    }
    return out
  }

  /** May this source use the agent's ports (HTTP, links)? Loopback and LAN prefixes, or anyone with http.allowFrom "any". */
  allows (remote: string): boolean {
    if (this.config.http.allowFrom === 'any') return true
    const ip = parseIp(remote)
    if (ip === null) return false
    if (addressScope(ip) === 'loopback') return true
    return lanNicFor(this.hal.nics.list(), ip) !== undefined
  }

  #registerMetrics (): void {
    const m = this.metrics
    m.gauge('canopy_build_info', 'Version and node id of this agent.', ['version', 'node_id'])
      .set({ version: VERSION, node_id: this.identity.nodeId }, 1)
    const uptime = m.gauge('canopy_uptime_seconds', 'Seconds since the agent started.')
    const rss = m.gauge('canopy_resident_memory_bytes', 'Resident set size of the process.')
    const heap = m.gauge('canopy_heap_used_bytes', 'V8 heap in use.')
    const requests = m.counter('canopy_http_requests_total', 'HTTP requests received.')
    const clientErrors = m.counter('canopy_http_client_errors_total', 'Malformed HTTP requests refused.')
    const forbidden = m.counter('canopy_http_forbidden_total', 'HTTP requests refused by source address.')
    const nics = m.gauge('canopy_interfaces', 'Network interfaces by role.', ['role'])
    m.onCollect(() => {
      uptime.set(Math.round((this.hal.clock.nowMs() - this.#startedAtMs) / 1000))
      const mem = process.memoryUsage()
      rss.set(mem.rss)
      heap.set(mem.heapUsed)
      requests.set(this.http.counters.requests)
      clientErrors.set(this.http.counters.clientErrors)
      forbidden.set(this.http.counters.forbidden)
      nics.reset()
      for (const role of ['lan', 'wan', 'loopback', 'none'] as const) {
        nics.set({ role }, this.hal.nics.list().filter((n) => n.role === role).length)
      }
    })
  }
}
