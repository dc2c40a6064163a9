// The LAN protocol services on an agent: the wire transport (signed
// datagrams on protocol.udpPort), the designated-provider election (its
// status() is /api/status "provider") and resolution (GET /api/resolve),
// with their Prometheus metrics. The peer directory is a parameter: the SSDP
// peer list in the agent, a static one in tests.

import { CanopyError } from '../errors'
import { sendJson } from '../http'
import { RESOLVE_QUERY_BYTES_MAX } from '../limits'
import {
  WIRE_DROP_REASONS as DROP_REASONS, createElection, MESSAGE_NAMES, NO_CONTENT, Resolver, WireTransport, parseContentRef, parsePieceText,
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
  const httpPort = (): number => agent.http.address()?.port ?? (config.http.port === 0 ? 1 : config.http.port)
  const content = options.content ?? NO_CONTENT
  const wire = new WireTransport({ hal, identity, peers: options.peers, log: log.child('wire'), port: config.protocol.udpPort, bindAddress: config.protocol.udpHost, ephemeralIfTaken: true })
  const election = createElection({
    hal, wire, peers: options.peers, log: log.child('election'), httpPort,
    candidate: config.protocol.election.candidate, wanMbps: config.protocol.election.wanMbps, freeFlashBytes: options.freeFlashBytes
  })
  const resolver = new Resolver({ hal, wire, index: content, provider: election, httpPort, log: log.child('resolve') })
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
    if (text === null) throw new CanopyError('INPUT_INVALID', 'content=<64-hex content id or http(s) URL> is required')
    const pieces = url.searchParams.get('pieces')
    const r = await resolver.resolve(parseContentRef(text), { pieces: pieces === null || pieces === 'all' ? null : parsePieceText(pieces) })
    sendJson(res, 200, r)
  })
}

function registerMetrics (agent: Agent, wire: WireTransport, election: Election, resolver: Resolver): void {
  const m = agent.metrics
  const datagrams = m.counter('canopy_wire_datagrams_total', 'Signed LAN datagrams accepted (in) and sent (out), by message type.', ['direction', 'type'])
  const dropped = m.counter('canopy_wire_dropped_total', 'LAN datagrams dropped, by reason (unknown_version and unknown_type are ignored newer messages).', ['reason'])
  const queue = m.gauge('canopy_wire_send_queue', 'Datagrams waiting in the send queue.')
  const lookups = m.counter('canopy_resolve_lookups_total', 'Content resolutions by outcome.', ['outcome'])
  const answers = m.counter('canopy_resolve_answers_total', 'Answers this node sent to NEEDs, by kind.', ['kind'])
  const role = m.gauge('canopy_provider_role', 'This node\'s election role (1 for the current one).', ['role'])
  const known = m.gauge('canopy_provider_known', '1 when a designated provider is known.')
  const elections = m.counter('canopy_elections_total', 'Election rounds this node took part in.')
  const changes = m.counter('canopy_provider_changes_total', 'Times the designated provider changed.')
  m.onCollect(() => {
    const s = wire.stats
    for (const t of MESSAGE_NAMES) {
      datagrams.set({ direction: 'in', type: t }, s.inByType[t])
      datagrams.set({ direction: 'out', type: t }, s.outByType[t])
    }
    for (const r of DROP_REASONS) dropped.set({ reason: r }, s.dropped[r])
    queue.set(wire.queued)
    const q = resolver.requester.stats
    for (const [outcome, n] of Object.entries(q.outcomes)) lookups.set({ outcome }, n)
    const a = resolver.responder.stats
    for (const kind of ['have', 'downloading', 'provider', 'thirdParty', 'cancelled'] as const) answers.set({ kind }, a[kind])
    for (const r of ['provider', 'follower', 'electing'] as const) role.set({ role: r }, election.role === r ? 1 : 0)
    known.set(election.current() === null ? 0 : 1)
    elections.set(election.stats.elections)
    changes.set(election.stats.changes)
  })
}
