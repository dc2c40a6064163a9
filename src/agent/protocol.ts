// The LAN protocol services on an agent: the wire transport (signed
// datagrams on protocol.udpPort), the designated-provider election (its
// status() is /api/status "provider") and resolution (GET /api/resolve),
// with their Prometheus metrics. The peer directory is a parameter: the SSDP
// peer list in the agent, a static one in tests.

import { CanopyError } from '../errors'
import { sendJson, type Metrics } from '../http'
import { RESOLVE_QUERY_BYTES_MAX } from '../limits'
import {
  createElection, MESSAGE_NAMES, NO_CONTENT, createResolver, createWireTransport, type Resolver, type WireTransport, parseContentRef, parsePieceText,
  type ContentIndex, type Election, type PeerDirectory
} from '../protocol'
import type { Agent } from './agent'

export interface LanProtocol {
  wire: WireTransport
  election: Election
  resolver: Resolver
  content: ContentIndex
}

export interface LanProtocolOptions {
  peers: PeerDirectory
  /** What this node holds; the transfer engine's index once it exists. */
  content?: ContentIndex
  /** Free flash for elections; the flash cache's figure once it exists. */
  freeFlashBytes?: () => number
}

export function addLanProtocol (agent: Agent, options: LanProtocolOptions): LanProtocol {
  const { config, hal, identity } = agent
  const log = agent.log.child('protocol')
  const httpPort = (): number => agent.http.address()?.port ?? (config.http.port || 1)
  const content = options.content ?? NO_CONTENT
  const wire = createWireTransport({ hal, identity, peers: options.peers, log: log.child('wire'), port: config.protocol.udpPort, bindAddress: config.protocol.udpHost, ephemeralIfTaken: true })
  const election = createElection({
    ...config.protocol.election, // candidate, wanMbps
    hal, wire, peers: options.peers, log: log.child('election'), httpPort, freeFlashBytes: options.freeFlashBytes
  })
  const resolver = createResolver({ hal, wire, index: content, provider: election, httpPort, log: log.child('resolve') })
  agent.add(wire)
  agent.add(election)
  agent.add(resolver)
  addResolveRoute(agent, resolver)
  registerMetrics(agent, wire, election, resolver)
  return { wire, election, resolver, content }
}

/** GET /api/resolve?content=<64-hex id | URL>[&pieces=0-9,20]: resolve on the LAN now (tests, tools). */
function addResolveRoute (agent: Agent, resolver: Resolver): void {
  agent.http.route('GET', '/api/resolve', async ({ res, url }) => {
    if (url.search.length > RESOLVE_QUERY_BYTES_MAX) throw new CanopyError('INPUT_INVALID', `query longer than ${RESOLVE_QUERY_BYTES_MAX} bytes`)
    const text = url.searchParams.get('content')
    if (text === null) throw new CanopyError('INPUT_INVALID', 'content=<64-hex id or http(s) URL> is required')
    const pieces = url.searchParams.get('pieces')
    const r = await resolver.resolve(parseContentRef(text), { pieces: pieces === null || pieces === 'all' ? null : parsePieceText(pieces) })
    sendJson(res, 200, r)
  })
}

/**
 * Labelled metrics copied from stats at every scrape: [name, help, label,
 * counts by label value]; a counter when the name ends in _total, else a gauge.
 */
export function statsByLabel (m: Metrics, rows: Array<[string, string, string, () => Record<string, number | undefined>]>): void {
  const all = rows.map(([name, help, label, get]) => [m[name.endsWith('_total') ? 'counter' : 'gauge'](name, help, [label]), label, get] as const)
  m.onCollect(() => {
    for (const [metric, label, get] of all) for (const [v, n] of Object.entries(get())) metric.set({ [label]: v }, n ?? 0)
  })
}

function registerMetrics (agent: Agent, wire: WireTransport, election: Election, resolver: Resolver): void {
  const m = agent.metrics
  const s = wire.stats
  const datagrams = m.counter('canopy_wire_datagrams_total', 'Signed LAN datagrams in and out, by message type.', ['direction', 'type'])
  m.onCollect(() => {
    for (const type of MESSAGE_NAMES) {
      datagrams.set({ direction: 'in', type }, s.inByType[type])
      datagrams.set({ direction: 'out', type }, s.outByType[type])
    }
  })
  statsByLabel(m, [
    ['canopy_wire_dropped_total', 'LAN datagrams dropped, by reason (unknown_*: newer messages, ignored).', 'reason', () => s.dropped],
    ['canopy_resolve_lookups_total', 'Content resolutions by outcome.', 'outcome', () => resolver.requester.stats.outcomes],
    ['canopy_resolve_answers_total', 'Answers this node sent to NEEDs, by kind.', 'kind', () => {
      const { followers, ...answers } = resolver.responder.stats // followers: a count now, not answers sent
      return answers
    }],
    ['canopy_provider_role', 'This node\'s election role (1 for the current one).', 'role', () => ({ provider: 0, follower: 0, electing: 0, [election.role]: 1 })]
  ])
  m.stats(() => election, [
    ['canopy_wire_send_queue', 'Datagrams waiting in the send queue.', () => wire.queued],
    ['canopy_provider_known', '1 when a designated provider is known.', (e) => e.current() ? 1 : 0],
    ['canopy_elections_total', 'Election rounds this node took part in.', (e) => e.stats.elections],
    ['canopy_provider_changes_total', 'Times the designated provider changed.', (e) => e.stats.changes]
  ])
}
