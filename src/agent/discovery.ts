// Discovery in the agent: the service (as "peers" in /api/status), GET
// /api/describe, GET /api/peers, the status page's peer table and the
// Prometheus metrics. The peer list it fills is the agent's PeerDirectory.

import type { ServerResponse } from 'node:http'
import { CanopyError } from '../errors'
import { renderValue, sendJson, type PageSection } from '../http'
import { formatPublicKey } from '../crypto'
import { SSDP_DROP_REASONS as DROP_REASONS, Discovery, NONCE_PATTERN } from '../protocol'
import { VERSION } from '../version'
import type { Agent } from './agent'

/** Build discovery for this agent and wire it in; other services take `.peers` as their PeerDirectory. */
export function addDiscovery (agent: Agent, options: { udpPort?: () => number, linkPort?: () => number | null } = {}): Discovery {
  const { config, hal, http, identity } = agent
  const discovery = new Discovery({
    clock: hal.clock,
    random: hal.random,
    nics: hal.nics,
    net: hal.net,
    log: agent.log.child('discovery'),
    identity,
    config: config.discovery,
    httpHost: config.http.host,
    httpPort: () => http.address()?.port ?? null,
    udpPort: options.udpPort ?? (() => config.protocol.udpPort),
    ...(options.linkPort === undefined ? {} : { linkPort: options.linkPort }),
    name: config.name,
    version: VERSION
  })
  agent.add({
    name: 'peers',
    start: () => discovery.start(),
    ready: () => discovery.ready(),
    stop: () => discovery.stop(),
    status: () => discovery.status(),
    page: () => peersPage(agent, discovery)
  })

  // Open to LAN sources (the server's default policy): peers fetch it.
  http.route('GET', '/api/describe', ({ res, url }) => {
    const nonce = url.searchParams.get('nonce')
    if (nonce !== null && !NONCE_PATTERN.test(nonce)) throw new CanopyError('INPUT_INVALID', 'nonce must be 16 to 64 base64url characters')
    sendBytes(res, discovery.describe(nonce))
  })

  http.route('GET', '/api/peers', ({ res }) => { sendJson(res, 200, peersJson(agent, discovery)) })

  addMetrics(agent, discovery)
  return discovery
}

function sendBytes (res: ServerResponse, body: Buffer): void {
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length, 'cache-control': 'no-store' })
  res.end(body)
}

function peersJson (agent: Agent, d: Discovery): Record<string, unknown> {
  const now = agent.hal.clock.nowMs()
  return {
    count: d.peers.size,
    max: d.peers.countMax,
    peers: d.peers.list().map((p) => {
      const o = d.peers.origin(p.nodeId)
      return {
        nodeId: p.nodeId,
        name: p.name,
        address: p.address,
        httpPort: p.httpPort,
        udpPort: p.udpPort,
        version: p.version,
        capabilities: p.capabilities,
        publicKey: formatPublicKey(p.publicKey),
        via: o?.via ?? null,
        location: o?.location ?? null,
        nic: o?.nic ?? null,
        lastSeenAgoMs: Math.round(now - p.lastSeenMs),
        expiresInMs: Math.round(p.expiresMs - now)
      }
    })
  }
}

function peersPage (agent: Agent, d: Discovery): PageSection {
  const rows = (peersJson(agent, d).peers as Array<Record<string, any>>).map((p) => ({
    name: p.name || '–',
    node: p.nodeId.slice(0, 12),
    address: `${p.address}:${p.httpPort}`,
    version: p.version,
    via: p.via,
    'last seen': `${Math.round(p.lastSeenAgoMs / 1000)} s ago`,
    'expires in': `${Math.round(p.expiresInMs / 1000)} s`
  }))
  return { title: `LAN peers (${d.peers.size})`, html: rows.length === 0 ? '<p class="dim">no peers yet (SSDP on the LAN interfaces, or discovery.staticPeers)</p>' : renderValue(rows) }
}

function addMetrics (agent: Agent, d: Discovery): void {
  const m = agent.metrics
  const ssdp = (): NonNullable<Discovery['ssdp']>['stats'] | undefined => d.ssdp?.stats
  m.stats(() => d, [
    ['canopy_peers', 'Verified peers.', () => d.peers.size],
    ['canopy_ssdp_interfaces', 'LAN interfaces SSDP serves.', () => d.ssdp?.interfaces().length ?? 0],
    ['canopy_ssdp_datagrams_in_total', 'SSDP datagrams received.', () => ssdp()?.datagramsIn ?? 0],
    ['canopy_ssdp_replies_rate_limited_total', 'Searches unanswered by the rate limits.', () => ssdp()?.repliesRateLimited ?? 0]
  ])
  const removed = m.counter('canopy_peers_removed_total', 'Peers removed, by reason.', ['reason'])
  const dOut = m.counter('canopy_ssdp_datagrams_out_total', 'SSDP datagrams sent, by kind.', ['kind'])
  const dropped = m.counter('canopy_ssdp_dropped_total', 'SSDP datagrams dropped or unanswered, by reason.', ['reason'])
  const heard = m.counter('canopy_ssdp_announcements_total', 'Verified announcements heard, by kind.', ['kind'])
  const fetches = m.counter('canopy_describe_fetches_total', 'Self-descriptions fetched, by result.', ['result'])
  m.onCollect(() => {
    for (const [reason, n] of Object.entries(d.peers.stats.removed)) removed.set({ reason }, n)
    const s = ssdp()
    for (const kind of ['notify', 'byebye', 'search', 'reply'] as const) dOut.set({ kind }, s?.datagramsOut[kind] ?? 0)
    for (const kind of ['notify', 'reply', 'byebye'] as const) heard.set({ kind }, s?.heard[kind] ?? 0)
    for (const reason of DROP_REASONS) dropped.set({ reason }, s?.dropped[reason] ?? 0)
    fetches.set({ result: 'verified' }, d.queue.stats.verified)
    for (const [code, n] of Object.entries(d.queue.stats.failed)) fetches.set({ result: code }, n ?? 0)
  })
}
