// Groups: record delivery latency across 2, 10 and 50 members (simulated
// network, 2-20 ms per hop, sparse graph), convergence after a partition
// heals (50 members, 5 % loss), bytes on the wire per record and member
// reached, and the record store's open time with 100 000 records on file flash.

import { join } from 'node:path'
import { FlashCache } from '../src/flash-cache/store'
import { openStore } from '../src/groups/store'
import { createRealClock, FileFlash } from '../src/hal'
import { fixtureGroup, quietLog, sign } from '../test/helpers/groups'
import { GroupSim } from '../test/helpers/groups-sim'
import { tempDir } from '../test/helpers/tmp'
import { ms, percentile, type Bench, type Row } from './table'

async function latency (n: number): Promise<{ p50: number, p99: number, bytes: number, messages: number }> {
  const sim = await GroupSim.create({ n, degree: 4, lossRate: 0, seed: n })
  const writes: Array<[string, number]> = []
  for (let k = 0; k < 40; k++) {
    const r = await sim.write(sim.random.int(n), 100)
    writes.push([r.hash, sim.clock.nowMs()])
    await sim.clock.advance(250)
  }
  await sim.clock.advance(3_000)
  const xs: number[] = []
  for (const [h, t] of writes) for (const [, at] of sim.arrivals.get(h) ?? []) if (at > t) xs.push(at - t)
  // flooding plus the anti-entropy rounds during the run, per record per member reached
  return { p50: percentile(xs, 50), p99: percentile(xs, 99), bytes: sim.bytes / (writes.length * (n - 1)), messages: sim.messages / (writes.length * (n - 1)) }
}

async function heal (): Promise<number> {
  const sim = await GroupSim.create({ n: 50, degree: 4, lossRate: 0.05, seed: 7 })
  sim.side = sim.ids.map((_, i) => (i < 25 ? 0 : 1))
  for (let k = 0; k < 40; k++) { await sim.write(k % 2 === 0 ? sim.random.int(25) : 25 + sim.random.int(25)); await sim.clock.advance(200) }
  sim.side = sim.side.map(() => 0)
  return await sim.untilConverged(60_000)
}

async function openTime (count: number): Promise<{ openMs: number, writeMs: number }> {
  const dir = tempDir('canopy-bench-groups-')
  const clock = createRealClock()
  const geometry = { readBytes: 16, programBytes: 16, blockBytes: 256 * 1024, blockCount: 256 }
  const opts = { clock, bytesMax: 40 * 1024 * 1024, piecesMax: count + 10, writeBudgetBytesPerDay: 1e12, log: quietLog }
  const storeOpts = { clock, recordsMax: count + 10, bytesMax: 40 * 1024 * 1024, perMinute: 1e9, log: quietLog }
  try {
    const { group, ids, members } = fixtureGroup(2, 3)
    let cache = await FlashCache.open(await FileFlash.open(join(dir.path, 'records'), geometry), opts)
    let store = await openStore(cache, storeOpts, () => true)
    store.ensure(group)
    for (const m of members) await store.apply(m)
    const t0 = Date.now()
    for (let i = 0; i < count; i++) await store.apply(sign(ids[1]!, { group, id: i.toString(16).padStart(32, '0'), payload: Buffer.alloc(64, i) }, clock), false)
    await store.purge()
    const writeMs = Date.now() - t0
    await cache.close()
    const t1 = performance.now()
    cache = await FlashCache.open(await FileFlash.open(join(dir.path, 'records'), geometry), opts)
    store = await openStore(cache, storeOpts, () => true)
    const openMs = performance.now() - t1
    if (store.count !== count + members.length) throw new Error(`reopened with ${store.count} records`)
    await cache.close()
    return { openMs, writeMs }
  } finally {
    dir.remove()
  }
}

export const groupsBench: Bench = {
  name: 'groups',
  async run (): Promise<Row[]> {
    const rows: Row[] = []
    for (const n of [2, 10, 50]) {
      const l = await latency(n)
      rows.push({ what: `record delivery, ${n} members: p50 / p99 (simulated 2-20 ms hops)`, value: `${ms(l.p50)} / ${ms(l.p99)}` })
      rows.push({ what: `bytes (messages) on the wire per record per member reached, ${n} members`, value: `${l.bytes.toFixed(0)} B (${l.messages.toFixed(2)})` })
    }
    const h = await heal()
    rows.push({ what: 'convergence after a partition heals (50 members, 5 % loss)', value: h < 0 ? 'not within 60 s' : ms(h), target: '≤ 30 s', ok: h >= 0 && h <= 30_000 })
    const o = await openTime(100_000)
    rows.push({ what: 'record store open, 100 000 records on file flash', value: ms(o.openMs), baseline: `writing them: ${ms(o.writeMs)}` })
    return rows
  }
}
