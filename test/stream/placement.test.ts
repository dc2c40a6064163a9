// Placement rules, alone.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { STREAM_CHILDREN_MAX } from '../../src/limits'
import { DISPLACE_MIN_STAY_MS, capacityFor, mergeCandidates, pickVictim, rotate } from '../../src/stream/placement'
import type { Candidate } from '../../src/stream/wire'

const c = (nodeId: string, depth: number, spare: number, uptimeS = 0, address = ''): Candidate => ({ nodeId, depth, spare, uptimeS, port: 0, address })

test('capacity is budget / bitrate, floored, bounded, with a bitrate floor before the source has measured one', () => {
  assert.is(capacityFor(4_000_000, 1_000_000), 4)
  assert.is(capacityFor(3_999_999, 1_000_000), 3)
  assert.is(capacityFor(0, 1_000_000), 0)
  assert.is(capacityFor(1e12, 1_000_000), STREAM_CHILDREN_MAX)
  assert.is(capacityFor(1_000_000, 0), 8, '1 MB/s over the 1 Mbit/s floor')
})

test('candidates: shallowest first, then most spare, then oldest; each node once; full and excluded nodes left out', () => {
  const merged = mergeCandidates([[c('a', 3, 1), c('b', 2, 1, 10)], [c('c', 2, 1, 50), c('a', 2, 2), c('x', 1, 0)], [c('d', 2, 1, 50), c('e', 1, 1)]], new Set(['e']))
  assert.equal(merged.map((x) => x.nodeId), ['a', 'c', 'd', 'b'])
  assert.is(merged[0]!.depth, 2, 'the shallowest entry of a node wins')
})

test('rotate spreads orphans over backups', () => {
  assert.equal(rotate([1, 2, 3], 1), [2, 3, 1])
  assert.equal(rotate([1, 2, 3], 5), [3, 1, 2])
  assert.equal(rotate([], 3), [])
})

test('displacement: a leaf that cannot relay gives way to one that can; a much younger leaf to an old relay; never a relay, never at once', () => {
  const now = 100_000
  const settled = now - DISPLACE_MIN_STAY_MS
  const kids = [
    { id: 'relay', capacity: 3, uptimeS: 10, children: 2, joinedMs: settled },
    { id: 'leaf0', capacity: 0, uptimeS: 5000, children: 0, joinedMs: settled },
    { id: 'leaf2', capacity: 2, uptimeS: 30, children: 0, joinedMs: settled }
  ]
  assert.is(pickVictim(kids, { capacity: 1, uptimeS: 0 }, now), 'leaf0')
  assert.is(pickVictim(kids, { capacity: 0, uptimeS: 99999 }, now), null, 'a joiner that cannot relay displaces nobody')
  const noZero = kids.filter((k) => k.id !== 'leaf0')
  assert.is(pickVictim(noZero, { capacity: 2, uptimeS: 100 }, now), null, 'not much older')
  assert.is(pickVictim(noZero, { capacity: 2, uptimeS: 4 * 30 + 300 }, now), 'leaf2')
  assert.is(pickVictim([{ ...kids[1]!, joinedMs: now - 10 }], { capacity: 4, uptimeS: 0 }, now), null, 'just joined: stays')
})

test.run()
