// The same protocols on real UDP sockets (loopback): a hit, a miss, and an
// election with a takeover after the provider stops. Deadlines come from the
// protocols themselves (a lookup always ends by RESOLVE_MISS_MS) plus waitFor.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { RESOLVE_MISS_MS } from '../../../src/limits'
import { waitFor } from '../../helpers/http'
import { buildLoopbackLan } from '../../helpers/loopback'

const ID = '5a'.repeat(32)

test('real sockets: a hit and a miss between five nodes', async () => {
  const lan = await buildLoopbackLan({ nodes: 5 })
  try {
    lan.nodes[3]!.content.hold(ID)
    const hit = await lan.nodes[0]!.resolver.resolve(ID)
    assert.is(hit.outcome, 'hit')
    assert.is(hit.holders[0]!.nodeId, lan.nodes[3]!.identity.nodeId)
    assert.is(hit.holders[0]!.baseUrl, 'http://127.0.0.1:80')
    const t0 = performance.now()
    const miss = await lan.nodes[0]!.resolver.resolve('5b'.repeat(32))
    assert.is(miss.outcome, 'miss')
    assert.ok(performance.now() - t0 >= RESOLVE_MISS_MS - 5)
    for (const n of lan.nodes) assert.is(n.wire.stats.dropped.signature + n.wire.stats.dropped.malformed + n.wire.stats.dropped.replay, 0)
  } finally {
    await lan.stop()
  }
})

test('real sockets: one provider, and another after it stops', async () => {
  const lan = await buildLoopbackLan({ nodes: 4, election: true, electionTiming: { heartbeatMs: 200, providerTimeoutMs: 600 } })
  try {
    const agreed = async (not?: string): Promise<string> => waitFor(async () => {
      const live = lan.nodes.filter((n) => n.alive)
      const ids = new Set(live.map((n) => n.election!.current()?.nodeId ?? null))
      const only = [...ids][0]
      return ids.size === 1 && only !== null && only !== undefined && only !== not ? only : null
    }, 5_000, 'one provider')
    const first = await agreed()
    await lan.kill(lan.nodes.find((n) => n.identity.nodeId === first)!)
    const second = await agreed(first)
    assert.is.not(second, first)
  } finally {
    await lan.stop()
  }
})

test.run()
