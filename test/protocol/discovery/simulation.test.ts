// Issue 3: 50 nodes on a lossy simulated LAN all discover each other; leavers
// and the dead drop out of every list.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimLan } from '../../helpers/sim-lan'
import { testSeed } from '../../helpers/seed'

test('50 nodes with 5 % loss (and jitter, duplicates) all discover each other; 5 leave, 5 die, the rest forget them', async () => {
  const seed = testSeed('discovery sim')
  const lan = await SimLan.create({ seed, count: 50, conditions: { loss: 0.05, jitterMs: 5, duplicate: 0.01 }, config: { maxAgeSeconds: 120, notifyIntervalMs: 30_000 } })
  const took = await lan.until(() => lan.complete(), 120_000, 50)
  const sizes = lan.nodes.map((n) => n.discovery.peers.size)
  assert.ok(took !== null, `not complete after 120 s: ${sizes.join(',')}`)
  console.log(`  50 nodes: complete after ${took} ms simulated; ${lan.network.stats.datagramsSent} datagrams, ${lan.network.stats.datagramsLost} lost`)
  for (const n of lan.nodes) {
    const ids = new Set(n.discovery.peers.list().map((p) => p.nodeId))
    assert.not.ok(ids.has(n.identity.nodeId), 'never lists itself')
    for (const m of lan.nodes) if (m !== n) assert.ok(ids.has(m.identity.nodeId))
  }
  const leaving = lan.nodes.slice(0, 5)
  const dying = lan.nodes.slice(5, 10)
  const staying = lan.nodes.slice(10)
  for (const n of leaving) await n.discovery.stop()
  for (const n of dying) n.host.kill()
  // Byebyes are datagrams too (5 % lost): most leavers are gone at once, all by their max-age.
  await lan.clock.advance(1_000)
  const afterBye = staying.reduce((k, n) => k + leaving.filter((l) => n.discovery.peers.get(l.identity.nodeId) === undefined).length, 0)
  assert.ok(afterBye >= staying.length * 5 * 0.85, `${afterBye} of ${staying.length * 5} byebyes heard within 1 s`)
  const gone = await lan.until(() => staying.every((n) => n.discovery.peers.size === staying.length - 1), 125_000, 500)
  assert.ok(gone !== null, `dead peers not dropped: ${staying.map((n) => n.discovery.peers.size).join(',')}`)
  // And the survivors still list each other (periodic NOTIFYs kept them fresh).
  assert.ok(staying.every((n) => staying.every((m) => m === n || n.discovery.peers.get(m.identity.nodeId) !== undefined)))
  await lan.stop()
})

test.run()
