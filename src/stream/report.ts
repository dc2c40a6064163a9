// What a node says about its streams: /api/streams and /api/status JSON,
// Prometheus series, and the status page's drawing of each tree (the path
// from the root down to this node, then its children with their subtrees).

import { escapeHtml, type Metrics, type PageSection } from '../http'
import type { Player } from './player'
import type { Session } from './session'

const short = (id: string): string => id.slice(0, 8)
const kbps = (s: Session): number => Math.round(s.bitrate * 8 / 1000)
/** Whole ms from `from` to `to`; null while `to` is. */
const span = (to: number | null | undefined, from: number): number | null => to == null ? null : Math.round(to - from)

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
    children: [...t.children.values()].map((c) => ({ nodeId: c.id, subtree: c.subtree, capacity: c.capacity, nextSeq: c.nextSeq, lagging: c.lag !== 0 })),
    subtree: t.subtree,
    bitrateKbps: kbps(s),
    latencyMs: Math.round(t.latencyMs),
    newestSeq: s.newestSeq,
    nextSeq: s.nextSeq,
    ring: { chunks: s.ring.size, bytes: s.ring.bytes, oldest: s.ring.oldest },
    players: players.map((p) => ({ cursor: p.cursor, chunks: p.chunks, bytes: p.bytes, skipped: p.skipped, firstByteMs: span(p.firstByteMs, p.startedMs) })),
    chunks: s.counters,
    tree: t.counters,
    reattaches: t.events.map((e) => ({
      reason: e.reason,
      from: e.from,
      to: e.to,
      silentMs: span(e.lostMs, e.heard),
      attachMs: span(e.attachedMs, e.lostMs),
      filledMs: span(e.filledMs, e.lostMs)
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
        `<li>${escapeHtml(short(c.id))} <span class="dim">subtree ${c.subtree}${c.lag !== 0 ? ', lagging' : ''}</span></li>`).join('') + '</ul>'
    }
    html += '</li></ul>'.repeat(path.length)
    const state = s.ended ? 'ended' : t.attached ? `depth ${t.depth}, ${kbps(s)} kbit/s` : 'joining'
    return `<h3>${escapeHtml(s.name)} <span class="dim">${escapeHtml(state)}</span></h3>${html}`
  })
  return { title: 'Stream trees', html: parts.join('') }
}

/** Prometheus series per stream (README "Live streams"), refreshed at each scrape: name, help, value (null: none now). */
const SERIES: ReadonlyArray<readonly [string, string, (s: Session, players: number) => number | null]> = [
  ...(['received', 'forwarded', 'repaired', 'dropped_late', 'lost', 'polluted'] as const).map((k) => [
    `chunks_${k}_total`,
    `Chunks ${{ received: 'verified', forwarded: 'sent to children', repaired: 'filling a hole', dropped_late: 'late or refused', lost: 'never received', polluted: 'or batches failing verification' }[k]}.`,
    (s: Session) => s.counters[k === 'dropped_late' ? 'droppedLate' : k]
  ] as const),
  ['reattaches_total', 'Re-attaches.', (s) => s.tree.counters.reattaches],
  ['reattach_last_ms', 'Last re-attach, lost to attached.', (s) => {
    const e = s.tree.events.at(-1)
    return e === undefined ? null : span(e.attachedMs, e.lostMs)
  }],
  ['depth', 'Depth (source 0, detached -1).', (s) => s.tree.depth],
  ['children', 'Children served.', (s) => s.tree.children.size],
  ['players', 'Local HTTP players.', (_, players) => players],
  ['latency_ms', 'Latency from the source.', (s) => Math.round(s.tree.latencyMs)],
  ['bitrate_bytes_per_second', 'Source bitrate estimate.', (s) => s.bitrate]
]

export function registerStreamMetrics (metrics: Metrics, sessions: () => readonly Session[], players: () => ReadonlyMap<string, number>): void {
  const all = SERIES.map(([name, help, value]) =>
    [metrics[name.endsWith('_total') ? 'counter' : 'gauge'](`canopy_stream_${name}`, help, ['stream']), value] as const)
  metrics.onCollect(() => {
    const p = players()
    for (const [m] of all) if ('reset' in m) m.reset()
    for (const s of sessions()) {
      for (const [m, value] of all) {
        const v = value(s, p.get(s.streamId) ?? 0)
        if (v !== null) m.set({ stream: s.name }, v)
      }
    }
  })
}
