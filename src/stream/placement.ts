// Where a node goes in the tree: pure functions, unit-tested alone.
//
// * A node takes children up to capacity = upload budget / bitrate.
// * A full node redirects a joiner to the shallowest nodes with spare slots
//   in its subtree (learnt from its children's reports), older nodes first:
//   depth stays near log_fanout(N) and the interior fills with long-lived
//   nodes, which churn studies show are the ones likely to stay.
// * A full node may displace a leaf child that cannot relay (capacity 0), or
//   a much younger leaf, to make room for a joiner that can: the leaf is
//   redirected to the joiner, one level lower.

import { STREAM_CANDIDATES_MAX, STREAM_CHILDREN_MAX, STREAM_BITRATE_FLOOR_BYTES_PER_SEC } from '../limits'
import type { Candidate } from './wire'

/** Children one node serves for a stream of this bitrate. */
export function capacityFor (uploadBytesPerSec: number, bitrateBytesPerSec: number): number {
  const rate = Math.max(bitrateBytesPerSec, STREAM_BITRATE_FLOOR_BYTES_PER_SEC)
  return Math.max(0, Math.min(STREAM_CHILDREN_MAX, Math.floor(uploadBytesPerSec / rate)))
}

/** Shallowest first; at equal depth more spare slots, then older. */
export function byPlacement (a: Candidate, b: Candidate): number {
  return a.depth - b.depth || b.spare - a.spare || b.uptimeS - a.uptimeS || (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0)
}

/** One list of the best candidates from several, each node once (its shallowest entry), without the excluded ids. */
export function mergeCandidates (lists: ReadonlyArray<readonly Candidate[]>, exclude: ReadonlySet<string>, max = STREAM_CANDIDATES_MAX): Candidate[] {
  const best = new Map<string, Candidate>()
  for (const list of lists) {
    for (const c of list) {
      if (exclude.has(c.nodeId) || c.spare <= 0) continue
      const old = best.get(c.nodeId)
      if (old === undefined || c.depth < old.depth || (c.depth === old.depth && c.address !== '' && old.address === '')) best.set(c.nodeId, c)
    }
  }
  return [...best.values()].sort(byPlacement).slice(0, max)
}

export function rotate<T> (list: readonly T[], by: number): T[] {
  if (list.length === 0) return []
  const k = ((by % list.length) + list.length) % list.length
  return [...list.slice(k), ...list.slice(0, k)]
}

export interface ChildView {
  id: string
  capacity: number
  uptimeS: number
  /** Children it reported having. */
  children: number
  joinedMs: number
}

/** A child stays put at least this long before it can be displaced (no flapping). */
export const DISPLACE_MIN_STAY_MS = 5_000

/**
 * The child to move one level down to make room for this joiner, or null.
 * Only leaves are moved (moving a relay would move its subtree). A leaf that
 * cannot relay gives way to one that can; otherwise a much younger leaf
 * gives way to an older joiner that can relay at least as many.
 */
export function pickVictim (children: readonly ChildView[], joiner: { capacity: number, uptimeS: number }, nowMs: number): string | null {
  if (joiner.capacity < 1) return null
  let victim: ChildView | null = null
  for (const c of children) {
    if (c.children > 0 || nowMs - c.joinedMs < DISPLACE_MIN_STAY_MS) continue
    if (victim === null || c.capacity < victim.capacity || (c.capacity === victim.capacity && c.uptimeS < victim.uptimeS)) victim = c
  }
  if (victim === null) return null
  if (victim.capacity === 0) return victim.id
  if (joiner.capacity >= victim.capacity && joiner.uptimeS >= 4 * victim.uptimeS + 300) return victim.id
  return null
}
