// Propagation on a simulated network: 50 members in a sparse random graph
// with 5 % loss, a partition into halves that both keep writing, a heal:
// every store converges to one digest within a bound.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { GroupSim } from '../helpers/groups-sim'
import { testSeed } from '../helpers/seed'

test('50 members, 5 % loss, partition and heal: every digest equal within 30 s simulated', async () => {
  const seed = testSeed('groups sync 50')
  const sim = await GroupSim.create({ n: 50, degree: 4, lossRate: 0.05, seed })
  // connected: records flood and anti-entropy repairs the losses
  for (let k = 0; k < 20; k++) { await sim.write(sim.random.int(50)); await sim.clock.advance(100) }
  assert.ok(await sim.untilConverged(20_000) >= 0, 'converged before the partition')
  // partition into halves, both keep writing (and update one shared record on both sides)
  sim.side = sim.ids.map((_, i) => (i < 25 ? 0 : 1))
  const shared = 'ab'.repeat(16)
  for (let k = 0; k < 40; k++) {
    await sim.write(k % 2 === 0 ? sim.random.int(25) : 25 + sim.random.int(25))
    if (k % 10 === 0) { await sim.write(k % 20 === 0 ? 3 : 30, 64, shared) }
    await sim.clock.advance(200)
  }
  await sim.clock.advance(5_000)
  assert.not.ok(sim.converged(), 'the halves differ while partitioned')
  const records = 20 + 40 + 4
  sim.messages = sim.bytes = 0
  const healedAt = sim.clock.nowMs()
  sim.side = sim.side.map(() => 0)
  const ms = await sim.untilConverged(30_000)
  let delivered = 0
  for (const at of sim.arrivals.values()) for (const t of at.values()) if (t >= healedAt) delivered++
  console.log(`  converged ${ms} ms after the heal: ${sim.messages} messages, ${sim.bytes} bytes for ${delivered} record deliveries (${(sim.messages / delivered).toFixed(1)} messages, ${(sim.bytes / delivered).toFixed(0)} B each)`)
  assert.ok(ms >= 0 && ms <= 30_000, `converged after the heal (${ms} ms)`)
  assert.is(sim.stores[0]!.list(sim.group, { type: 'chat' }).length, records - 4 + 1)
})

test('flooding: one record reaches all 50 members with a bounded number of messages', async () => {
  const sim = await GroupSim.create({ n: 50, degree: 4, lossRate: 0, seed: testSeed('groups flood', 2), syncIntervalMs: 60_000 })
  const r = await sim.write(0, 100)
  await sim.clock.advance(2_000)
  assert.is(sim.arrivals.get(r.hash)?.size, 50)
  const perDelivery = sim.bytes / 49
  console.log(`  one record: ${sim.messages} messages, ${sim.bytes} bytes, ${perDelivery.toFixed(0)} bytes per member reached (record ${r.size} bytes)`)
  // each member forwards once to each neighbour: messages ≤ 2 × edges
  const edges = sim.edges.reduce((n, e) => n + e.size, 0)
  assert.ok(sim.messages <= edges, `${sim.messages} messages for ${edges / 2} edges`)
})

test.run()
