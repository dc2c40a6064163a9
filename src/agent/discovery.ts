// Discovery in the agent: the service (as "peers" in /api/status), GET
// /api/describe, GET /api/peers, the status page's peer table and the
// Prometheus metrics. The peer list it fills is the agent's PeerDirectory.

import { CanopyError } from '../errors'
import { renderValue, sendJson, sendText, type PageSection } from '../http'
import { formatPublicKey } from '../crypto'
import { createDiscovery, type Discovery, NONCE_PATTERN, type SsdpStats, zeroSsdpStats } from '../protocol'
import { statsByLabel } from './protocol'
import { VERSION } from '../version'
import type { Agent } from './agent'

/** Build discovery for this agent and wire it in; other services take `.peers` as their PeerDirectory. */
export function addDiscovery (agent: Agent, options: { udpPort?: () => number, linkPort?: () => number | null } = {}): Discovery {
  const { config, hal, http, identity } = agent
  const discovery = createDiscovery({
    ...hal, // clock, random, nics, net
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
  const { start, ready, stop, status } = discovery
  agent.add({ name: 'peers', start, ready, stop, status, page: () => peersPage(agent, discovery) })

  // Open to LAN sources (the server's default policy): peers fetch it.
  http.route('GET', '/api/describe', ({ res, url }) => {
    const nonce = url.searchParams.get('nonce')
    if (nonce !== null && !NONCE_PATTERN.test(nonce)) throw new CanopyError('INPUT_INVALID', 'nonce must be 16 to 64 base64url characters')
    // The signed bytes as they are: JSON, ASCII or UTF-8, so the text round trip keeps every byte.
    sendText(res, 200, discovery.describe(nonce).toString(), 'application/json; charset=utf-8')
  })

  http.route('GET', '/api/peers', ({ res }) => { sendJson(res, 200, peersJson(agent, discovery)) })

  addMetrics(agent, discovery)
  return discovery
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
  const none = zeroSsdpStats()
  const ssdp = (): SsdpStats => d.ssdp?.stats ?? none
  m.stats(() => d, [
    ['canopy_peers', 'Verified peers.', () => d.peers.size],
    ['canopy_ssdp_interfaces', 'LAN interfaces SSDP serves.', () => d.ssdp?.interfaces().length ?? 0],
    ['canopy_ssdp_datagrams_in_total', 'SSDP datagrams received.', () => ssdp().datagramsIn],
    ['canopy_ssdp_replies_rate_limited_total', 'Searches unanswered by the rate limits.', () => ssdp().repliesRateLimited]
  ])
  statsByLabel(m, [
    ['canopy_peers_removed_total', 'Peers removed, by reason.', 'reason', () => d.peers.stats.removed],
    ['canopy_ssdp_datagrams_out_total', 'SSDP datagrams sent, by kind.', 'kind', () => ssdp().datagramsOut],
    ['canopy_ssdp_dropped_total', 'SSDP datagrams dropped or unanswered, by reason.', 'reason', () => ssdp().dropped],
    ['canopy_ssdp_announcements_total', 'Verified announcements heard, by kind.', 'kind', () => ssdp().heard],
    ['canopy_describe_fetches_total', 'Self-descriptions fetched, by result.', 'result', () => ({ verified: d.queue.stats.verified, ...d.queue.stats.failed })]
  ])
}
