// Discovery in the agent: the service (as "peers" in /api/status), GET
// /api/describe, GET /api/peers, the status page's peer table and the
// Prometheus metrics. The peer list it fills is the agent's PeerDirectory.

import type { ServerResponse } from 'node:http'
import { CanopyError } from '../errors'
import { escapeHtml, sendJson, type PageSection } from '../http'
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
  const rows = (peersJson(agent, d).peers as Array<Record<string, unknown>>).map((p) => {
    const cells = [String(p.name) || '–', String(p.nodeId).slice(0, 12), `${String(p.address)}:${String(p.httpPort)}`, String(p.version), String(p.via),
      `${Math.round(Number(p.lastSeenAgoMs) / 1000)} s ago`, `${Math.round(Number(p.expiresInMs) / 1000)} s`]
    return `<tr>${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`
  })
  const head = ['name', 'node', 'address', 'version', 'via', 'last seen', 'expires in'].map((h) => `<th>${h}</th>`).join('')
  const html = rows.length === 0
    ? '<p class="dim">no peers yet (SSDP on the LAN interfaces, or discovery.staticPeers)</p>'
    : `<table><thead><tr>${head}</tr></thead><tbody>${rows.join('')}</tbody></table>`
  return { title: `LAN peers (${d.peers.size})`, html }
}

function addMetrics (agent: Agent, d: Discovery): void {
  const m = agent.metrics
  const peers = m.gauge('canopy_peers', 'Verified peers in the peer list.')
  const removed = m.counter('canopy_peers_removed_total', 'Peers removed from the list, by reason.', ['reason'])
  const ifaces = m.gauge('canopy_ssdp_interfaces', 'LAN interfaces SSDP serves.')
  const dIn = m.counter('canopy_ssdp_datagrams_in_total', 'SSDP datagrams received.')
  const dOut = m.counter('canopy_ssdp_datagrams_out_total', 'SSDP datagrams sent, by kind.', ['kind'])
  const dropped = m.counter('canopy_ssdp_dropped_total', 'SSDP datagrams dropped or left unanswered, by reason.', ['reason'])
  const heard = m.counter('canopy_ssdp_announcements_total', 'Canopy announcements heard that passed every check, by kind (notify, reply, byebye).', ['kind'])
  const limited = m.counter('canopy_ssdp_replies_rate_limited_total', 'Searches left unanswered by the reply rate limits.')
  const fetches = m.counter('canopy_describe_fetches_total', 'Self-descriptions fetched, by result (verified or an error code).', ['result'])
  m.onCollect(() => {
    peers.set(d.peers.size)
    for (const [reason, n] of Object.entries(d.peers.stats.removed)) removed.set({ reason }, n)
    const s = d.ssdp
    ifaces.set(s?.interfaces().length ?? 0)
    dIn.set(s?.stats.datagramsIn ?? 0)
    for (const kind of ['notify', 'byebye', 'search', 'reply'] as const) dOut.set({ kind }, s?.stats.datagramsOut[kind] ?? 0)
    for (const kind of ['notify', 'reply', 'byebye'] as const) heard.set({ kind }, s?.stats.heard[kind] ?? 0)
    for (const reason of DROP_REASONS) dropped.set({ reason }, s?.stats.dropped[reason] ?? 0)
    limited.set(s?.stats.repliesRateLimited ?? 0)
    fetches.set({ result: 'verified' }, d.queue.stats.verified)
    for (const [code, n] of Object.entries(d.queue.stats.failed)) fetches.set({ result: code }, n ?? 0)
  })
}
