// What a node says about its streams: /api/streams and /api/status JSON,
// Prometheus series, and the status page's drawing of each tree (the path
// from the root down to this node, then its children with their subtrees).

import { escapeHtml, type Metrics, type PageSection } from '../http'
import type { Player } from './player'
import type { Session } from './session'

const short = (id: string): string => id.slice(0, 8)

export function sessionRole (s: Session, players: number): 'source' | 'relay' | 'player' {
  return s.isSource ? 'source' : s.tree.children.size > 0 || players === 0 ? 'relay' : 'player'
}

export function sessionStatus (s: Session, players: readonly Player[], nowMs: number): Record<string, unknown> {
  const t = s.tree
  return {
    name: s.name,
    streamId: s.streamId,
    source: s.meta.sourceId,
    role: sessionRole(s, players.length),
    attached: t.attached,
    ended: s.ended,
    depth: t.depth,
    path: t.path,
    parent: t.parent === null ? null : { nodeId: t.parent.nodeId, sinceMs: Math.round(nowMs - t.parent.sinceMs), backups: t.parent.backups.map((b) => b.nodeId) },
    capacity: t.capacity(),
    children: [...t.children.values()].map((c) => ({ nodeId: c.nodeId, subtree: c.subtree, capacity: c.capacity, nextSeq: c.nextSeq, lagging: c.lagSinceMs !== 0 })),
    subtree: t.subtree,
    bitrateKbps: Math.round(s.bitrate * 8 / 1000),
    latencyMs: Math.round(t.latencyMs),
    newestSeq: s.newestSeq,
    nextSeq: s.nextSeq,
    ring: { chunks: s.ring.size, bytes: s.ring.bytes, oldest: s.ring.oldest },
    players: players.map((p) => ({ cursor: p.cursor, chunks: p.chunks, bytes: p.bytes, skipped: p.skipped, firstByteMs: p.firstByteMs === null ? null : Math.round(p.firstByteMs - p.startedMs) })),
    chunks: s.counters,
    tree: t.counters,
    reattaches: t.events.map((e) => ({
      reason: e.reason,
      from: e.from,
      to: e.to,
      silentMs: Math.round(e.lostMs - e.lastHeardMs),
      attachMs: e.attachedMs === null ? null : Math.round(e.attachedMs - e.lostMs),
      filledMs: e.filledMs === null ? null : Math.round(e.filledMs - e.lostMs)
    }))
  }
}

export function treePage (sessions: readonly Session[], selfId: string): PageSection | null {
  if (sessions.length === 0) return null
  const parts = sessions.map((s) => {
    const t = s.tree
    const path = t.path.length > 0 ? t.path : [selfId]
    let html = ''
    path.forEach((id, i) => {
      const me = id === selfId
      const label = `${i === 0 ? 'source ' : ''}${escapeHtml(short(id))}${me ? ' (this node)' : ''}`
      html += `<ul><li>${me ? `<strong>${label}</strong>` : label}`
    })
    if (t.children.size > 0) {
      html += '<ul>' + [...t.children.values()].map((c) =>
        `<li>${escapeHtml(short(c.nodeId))} <span class="dim">subtree ${c.subtree}${c.lagSinceMs !== 0 ? ', lagging' : ''}</span></li>`).join('') + '</ul>'
    }
    html += '</li></ul>'.repeat(path.length)
    const state = s.ended ? 'ended' : t.attached ? `depth ${t.depth}, ${Math.round(s.bitrate * 8 / 1000)} kbit/s` : 'joining'
    return `<h3>${escapeHtml(s.name)} <span class="dim">${escapeHtml(state)}</span></h3>${html}`
  })
  return { title: 'Stream trees', html: parts.join('') }
}

/** Prometheus series per stream, refreshed at each scrape. */
export function registerStreamMetrics (metrics: Metrics, sessions: () => readonly Session[], players: () => ReadonlyMap<string, number>): void {
  const label = ['stream']
  const counters = {
    received: metrics.counter('canopy_stream_chunks_received_total', 'Verified chunks taken into the ring.', label),
    forwarded: metrics.counter('canopy_stream_chunks_forwarded_total', 'Chunk frames queued to children.', label),
    repaired: metrics.counter('canopy_stream_chunks_repaired_total', 'Chunks that filled a hole (gap pulled after a re-attach or a drop).', label),
    droppedLate: metrics.counter('canopy_stream_chunks_dropped_late_total', 'Chunks not sent to a child: past the playout deadline or its queue full.', label),
    lost: metrics.counter('canopy_stream_chunks_lost_total', 'Chunks that never arrived in time.', label),
    polluted: metrics.counter('canopy_stream_chunks_polluted_total', 'Chunks or batches that failed verification.', label)
  }
  const reattaches = metrics.counter('canopy_stream_reattaches_total', 'Times this node re-attached after losing its parent.', label)
  const reattachMs = metrics.gauge('canopy_stream_reattach_last_ms', 'Duration of the last re-attach (parent lost to new parent accepted).', label)
  const depth = metrics.gauge('canopy_stream_depth', 'Depth in the tree (source 0, detached -1).', label)
  const children = metrics.gauge('canopy_stream_children', 'Children served.', label)
  const playerCount = metrics.gauge('canopy_stream_players', 'Local HTTP players.', label)
  const latency = metrics.gauge('canopy_stream_latency_ms', 'Estimated latency from the source.', label)
  const bitrate = metrics.gauge('canopy_stream_bitrate_bytes_per_second', "The source's bitrate estimate.", label)
  metrics.onCollect(() => {
    for (const g of [reattachMs, depth, children, playerCount, latency, bitrate]) g.reset()
    const p = players()
    for (const s of sessions()) {
      const l = { stream: s.name }
      for (const [k, c] of Object.entries(counters)) c.set(l, s.counters[k as keyof typeof counters])
      reattaches.set(l, s.tree.counters.reattaches)
      const last = s.tree.events.at(-1)
      if (last?.attachedMs != null) reattachMs.set(l, Math.round(last.attachedMs - last.lostMs))
      depth.set(l, s.tree.depth)
      children.set(l, s.tree.children.size)
      playerCount.set(l, p.get(s.streamId) ?? 0)
      latency.set(l, Math.round(s.tree.latencyMs))
      bitrate.set(l, s.bitrate)
    }
  })
}
