// The composition root: builds the agent from a validated config and a HAL,
// and owns the order of start and stop. Modules never reach for globals; they
// get what they need from here.

import type { AddressInfo } from 'node:net'
import type { Config } from '../config'
import { CanopyError } from '../errors'
import { lanNicFor, parseIp, addressScope, type Hal } from '../hal'
import { createHttpServer, Metrics, type HttpServer } from '../http'
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

/** The running agent (make one with Agent.create). */
export interface Agent {
  readonly config: Config
  readonly hal: Hal
  readonly log: Logger
  readonly identity: Identity
  /** Subsystems, in start order. */
  readonly services: Service[]
  readonly metrics: Metrics
  readonly http: HttpServer
  readonly stopping: boolean
  /** Subsystems are added before start(), in start order. */
  add (service: Service): void
  start (): Promise<AddressInfo>
  /** The status page URL as a person on this box would type it. */
  readonly url: string
  stop (deadlineMs?: number): Promise<void>
  status (): Record<string, unknown>
  /** May this source use the agent's ports (HTTP, links)? Loopback and LAN prefixes, or anyone with http.allowFrom "any". */
  allows (remote: string): boolean
}

export const Agent = {
  async create ({ config, hal, log }: AgentOptions): Promise<Agent> {
    const { identity, created } = await loadOrCreateIdentity(hal.files, hal.random, hal.dataDir)
    log.info(created ? 'identity created' : 'identity loaded', { nodeId: identity.nodeId, publicKey: identity.publicKeyText })
    return createAgent(config, hal, log, identity)
  }
}

function createAgent (config: Config, hal: Hal, log: Logger, identity: Identity): Agent {
  const { clock, nics } = hal
  const services: Service[] = []
  const metrics = new Metrics()
  let stopping = false
  let startedAtMs = 0
  let startedWallMs = 0
  let listening: AddressInfo | null = null
  const uptimeSeconds = (): number => Math.round((clock.nowMs() - startedAtMs) / 1000)

  const http = createHttpServer({
    ...config.http, // host, port, connectionsMax, headersTimeoutMs
    requestTimeoutMs: Math.max(config.http.requestTimeoutMs, config.http.headersTimeoutMs),
    allow: (remote) => agent.allows(remote),
    log: log.child('http')
  })

  const agent: Agent = {
    config,
    hal,
    log,
    identity,
    services,
    metrics,
    http,
    get stopping () { return stopping },

    add (service) {
      if (services.some((s) => s.name === service.name)) throw new CanopyError('ASSERTION', `service ${service.name} added twice`)
      services.push(service)
    },

    async start () {
      startedAtMs = clock.nowMs()
      startedWallMs = clock.wallMs()
      for (const s of services) await s.start?.()
      listening = await http.listen()
      for (const s of services) await s.ready?.()
      log.info('listening', { address: listening.address, port: listening.port, statusPage: agent.url })
      return listening
    },

    get url () {
      const a = listening
      if (a === null) return ''
      const wildcard = a.address === '0.0.0.0' || a.address === '::'
      const host = wildcard ? '127.0.0.1' : a.family === 'IPv6' ? `[${a.address}]` : a.address
      return `http://${host}:${a.port}/`
    },

    async stop (deadlineMs = SHUTDOWN_MS_MAX) {
      if (stopping) return
      stopping = true
      const end = clock.nowMs() + deadlineMs
      const left = (): number => Math.max(0, end - clock.nowMs())
      // Stop taking requests first, then the subsystems in reverse order.
      const httpClosed = http.close(Math.min(left(), deadlineMs / 2))
      for (const s of [...services].reverse()) {
        try {
          await s.stop?.(left())
        } catch (err) {
          log.warn('stop failed', { service: s.name, err })
        }
      }
      await httpClosed
      await hal.close()
      log.info('stopped')
    },

    status () {
      const mem = process.memoryUsage()
      const out: Record<string, unknown> = {
        nodeId: identity.nodeId,
        name: config.name,
        version: VERSION,
        publicKey: identity.publicKeyText,
        uptimeSeconds: uptimeSeconds(),
        startedAt: new Date(startedWallMs).toISOString(),
        memory: { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, heapTotalBytes: mem.heapTotal, externalBytes: mem.external },
        http: { url: agent.url, ...http.counters },
        // name, up, multicast, speedMbps, role, and addresses as prefixes
        interfaces: nics.list().map(({ loopback, addresses, ...n }) => ({ ...n, addresses: addresses.map((a) => `${a.address}/${a.prefixLength}`) }))
      }
      for (const s of services) {
        if (s.status === undefined) continue
        try {
          out[s.name] = s.status()
        } catch (err) {
          out[s.name] = { error: CanopyError.from(err, 'ASSERTION').message }
        }
      }
      return out
    },

    allows (remote) {
      if (config.http.allowFrom === 'any') return true
      const ip = parseIp(remote)
      if (ip === null) return false
      if (addressScope(ip) === 'loopback') return true
      return lanNicFor(nics.list(), ip) !== undefined
    }
  }

  addStatusRoutes(agent)
  metrics.gauge('canopy_build_info', 'Version, node id.', ['version', 'node_id'])
    .set({ version: VERSION, node_id: identity.nodeId }, 1)
  const counters = http.counters
  metrics.stats(() => process.memoryUsage(), [
    ['canopy_uptime_seconds', 'Seconds since start.', uptimeSeconds],
    ['canopy_resident_memory_bytes', 'Resident set size.', (mem) => mem.rss],
    ['canopy_heap_used_bytes', 'V8 heap in use.', (mem) => mem.heapUsed],
    ['canopy_http_requests_total', 'HTTP requests.', () => counters.requests],
    ['canopy_http_client_errors_total', 'Malformed requests.', () => counters.clientErrors],
    ['canopy_http_forbidden_total', 'Requests refused by source.', () => counters.forbidden]
  ])
  const roles = metrics.gauge('canopy_interfaces', 'Interfaces by role.', ['role'])
  metrics.onCollect(() => {
    roles.reset()
    for (const role of ['lan', 'wan', 'loopback', 'none'] as const) {
      roles.set({ role }, nics.list().filter((n) => n.role === role).length)
    }
  })
  return agent
}
