// Who should be the designated provider: the node with WAN access, then the
// most WAN bandwidth, then the most free flash, then the longest uptime, then
// the lowest node id. Quantities compare in powers of two, so small changes
// (a few MiB of cache filled, a few seconds of uptime) never reorder nodes.
//
// Two orders, on purpose:
//   * a candidate order (all criteria) picks the winner of an election;
//   * a stable order (WAN access, bandwidth class, node id: values that do not
//     drift) collapses two providers after a partition heals, so both sides
//     always agree on which one stays, whatever their uptime and flash did.
// A sitting provider is displaced only by a node with better WAN capability,
// never by one with a little more flash or uptime (no churn).

import type { Nics } from '../../hal'
import type { Criteria } from '../wire/messages'

export interface Claim {
  nodeId: string
  criteria: Criteria
}

const MIB = 1024 * 1024
/** A quantity as it travels: a whole number in [0, 2^32 - 1]. */
const u32 = (x: number): number => Math.min(0xffff_ffff, Math.max(0, Math.floor(x)))

/** 0 for 0, then 1 + floor(log2(x)): 1, 2-3, 4-7, ... */
export const bucket = (x: number): number => (x <= 0 ? 0 : Math.floor(Math.log2(x)) + 1)

export interface MeasureInput {
  nics: Nics
  /** Configured WAN bandwidth; 0: the WAN interface's link speed. */
  wanMbps: number
  freeFlashBytes: number
  uptimeMs: number
  httpPort: number
}

export function measure (i: MeasureInput): Criteria {
  const wan = i.nics.list().filter((n) => n.role === 'wan' && n.up && n.addresses.length > 0)
  const linkMbps = Math.max(0, ...wan.map((n) => n.speedMbps ?? 0))
  return {
    w: wan.length > 0,
    b: u32(wan.length === 0 ? 0 : i.wanMbps > 0 ? i.wanMbps : linkMbps),
    f: u32(i.freeFlashBytes / MIB),
    u: u32(i.uptimeMs / 1000),
    h: i.httpPort
  }
}

const stableKey = (c: Criteria): number[] => [c.w ? 1 : 0, bucket(c.b)]
const candidateKey = (c: Criteria): number[] => [...stableKey(c), bucket(c.f), bucket(c.u)]

/** >0 when a is better, <0 when b is, 0 when equal. */
function compareKeys (a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return 0
}

const byId = (a: Claim, b: Claim): boolean => a.nodeId < b.nodeId

/** Does a win an election against b? */
export function beatsCandidate (a: Claim, b: Claim): boolean {
  const c = compareKeys(candidateKey(a.criteria), candidateKey(b.criteria))
  return c !== 0 ? c > 0 : byId(a, b)
}

/** Of two providers, does a stay and b step down? */
export function beatsProvider (a: Claim, b: Claim): boolean {
  const c = compareKeys(stableKey(a.criteria), stableKey(b.criteria))
  return c !== 0 ? c > 0 : byId(a, b)
}

/** Is the challenger worth replacing a sitting provider for? */
export function displaces (challenger: Claim, incumbent: Claim): boolean {
  return compareKeys(stableKey(challenger.criteria), stableKey(incumbent.criteria)) > 0
}
