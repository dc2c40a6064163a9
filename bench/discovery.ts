// Discovery figures (issue 3): how long until every agent lists every other,
// on the simulated network (2/10/50 agents, 5 % loss) and as real processes
// in network namespaces; the amplification of an ssdp:all search, ours beside
// node-ssdp's server answering the same search in the same run; and the
// replies a flood of searches gets.

import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { SSDP_REPLIES_PER_SECOND_MAX, SSDP_SOURCE_REPLIES_BURST } from '../src/limits'
import { SSDP_GROUP, SSDP_PORT } from '../src/protocol'
import { buildSearch } from '../src/protocol/ssdp/messages'
import { NODE_FLAGS, builtBundle } from '../test/helpers/bundle'
import { createNetnsLab, netnsAvailable, type LabHost, type NetnsLab } from '../test/helpers/netns'
import { SimLan } from '../test/helpers/sim-lan'
import { tempDir } from '../test/helpers/tmp'
import { median, ms, type Bench, type Row } from './table'

const SEEDS = [1, 2, 3, 4, 5]
const FIXTURES = join(__dirname, '..', 'test', 'lab', 'fixtures')
const ROOT = join(__dirname, '..')

async function simDiscovery (count: number, seed: number): Promise<number> {
  const lan = await SimLan.create({ seed, count, conditions: { loss: 0.05, jitterMs: 2 } })
  const took = await lan.until(() => lan.complete(), 60_000, 10)
  await lan.stop()
  return took ?? Infinity
}

/** Searches from one source, or from many spoofed LAN sources, at 1 000 per second for 10 s: replies per second. */
async function simFlood (sources: number): Promise<number> {
  const lan = await SimLan.create({ seed: 9, count: 1 })
  await lan.clock.advance(5_000)
  const node = lan.nodes[0]!
  const ssdp = node.discovery.ssdp!
  const before = ssdp.stats.datagramsOut.reply
  const iface = node.host.interfaces[0]!
  const search = buildSearch('ssdp:all', 1)
  let i = 0
  for (let t = 0; t < 10_000; t += 10) {
    for (let k = 0; k < 10; k++) {
      node.host.deliverDatagram(iface, SSDP_GROUP, SSDP_PORT, { data: search, address: `192.168.1.${100 + (i++ % sources)}`, port: 5000 })
    }
    await lan.clock.advance(10)
  }
  await lan.clock.advance(2_000)
  const replies = ssdp.stats.datagramsOut.reply - before
  await lan.stop()
  return replies / 10
}

// ---- real processes in namespaces ---------------------------------------------------

interface Proc { proc: ChildProcess, out: () => string, stop (): Promise<void> }

function start (lab: NetnsLab, host: LabHost, args: string[]): Proc {
  const proc = lab.spawn(host, process.execPath, args, { cwd: ROOT })
  let out = ''
  proc.stdout!.on('data', (c: Buffer) => { out += c.toString() })
  proc.stderr!.on('data', (c: Buffer) => { out += c.toString() })
  return {
    proc,
    out: () => out,
    stop: () => new Promise((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) { resolve(); return }
      proc.once('exit', () => { resolve() })
      proc.kill('SIGTERM')
    })
  }
}

async function waitFor (what: string, deadlineMs: number, fn: () => Promise<boolean> | boolean): Promise<number> {
  const t0 = Date.now()
  while (Date.now() - t0 < deadlineMs) {
    if (await Promise.resolve(fn()).catch(() => false)) return Date.now() - t0
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`${what}: not within ${deadlineMs} ms`)
}

async function agentIn (lab: NetnsLab, host: LabHost, dir: string): Promise<Proc & { upAt: number }> {
  const p = start(lab, host, [...NODE_FLAGS, await builtBundle(), 'agent', '--http', '0.0.0.0:8787', '--data', dir])
  await waitFor('agent up', 10_000, () => /is up/.test(p.out()))
  return { ...p, upAt: Date.now() }
}

const peerCount = async (lab: NetnsLab, host: LabHost): Promise<number> =>
  JSON.parse(await lab.exec(host, 'curl', ['-s', '-m', '1', 'http://127.0.0.1:8787/api/peers'], 2_000)).count as number

interface ProbeResult { requestBytes: number, sent: number, replies: Record<string, { count: number, bytes: number }> }

async function probe (lab: NetnsLab, host: LabHost, count: number, spreadMs: number, waitMs: number): Promise<ProbeResult> {
  const out = await lab.exec(host, process.execPath, ['-r', 'esbuild-register', join(FIXTURES, 'ssdp-probe.ts'), host.address, 'ssdp:all', String(count), String(spreadMs), String(waitMs)], spreadMs + waitMs + 10_000)
  return JSON.parse(out) as ProbeResult
}

interface RealFigures { discoveryMs: number[], ours: { amp: number, datagrams: number, bytes: number }, base: { amp: number, datagrams: number, bytes: number }, floodOurs: number, floodBase: number, requestBytes: number }

async function realFigures (): Promise<RealFigures> {
  const dir = tempDir('canopy-bench-')
  const discoveryMs: number[] = []
  try {
    for (let run = 0; run < 3; run++) {
      const lab = createNetnsLab(2)
      try {
        const [a, b] = await Promise.all([agentIn(lab, lab.hosts[0]!, join(dir.path, `a${run}`)), agentIn(lab, lab.hosts[1]!, join(dir.path, `b${run}`))])
        const up = Math.max(a.upAt, b.upAt)
        await waitFor('two agents', 5_000, async () => (await peerCount(lab, lab.hosts[0]!)) === 1 && (await peerCount(lab, lab.hosts[1]!)) === 1)
        discoveryMs.push(Date.now() - up)
        await Promise.all([a.stop(), b.stop()])
      } finally {
        lab.cleanup()
      }
    }
    const lab = createNetnsLab(3)
    const [h0, h1, h2] = lab.hosts as [LabHost, LabHost, LabHost]
    try {
      const ours = await agentIn(lab, h0, join(dir.path, 'amp'))
      const base = start(lab, h1, ['-r', 'esbuild-register', join(FIXTURES, 'node-ssdp-server.ts'), '5', h1.address, 'readme'])
      await waitFor('node-ssdp server', 10_000, () => /ready/.test(base.out()))
      await new Promise((r) => setTimeout(r, 3_500)) // let start-up announcements pass
      const amps: Array<{ ours: ProbeResult['replies'][string], base: ProbeResult['replies'][string], req: number }> = []
      for (let i = 0; i < 3; i++) {
        const r = await probe(lab, h2, 1, 0, 2_500)
        amps.push({ ours: r.replies[h0.address] ?? { count: 0, bytes: 0 }, base: r.replies[h1.address] ?? { count: 0, bytes: 0 }, req: r.requestBytes })
      }
      const req = amps[0]!.req
      const flood = await probe(lab, h2, 5_000, 5_000, 2_500)
      await Promise.all([ours.stop(), base.stop()])
      const pick = (k: 'ours' | 'base') => ({
        amp: median(amps.map((a) => a[k].bytes / a.req)),
        datagrams: median(amps.map((a) => a[k].count)),
        bytes: median(amps.map((a) => a[k].bytes))
      })
      return {
        discoveryMs,
        ours: pick('ours'),
        base: pick('base'),
        floodOurs: (flood.replies[h0.address]?.count ?? 0) / 5,
        floodBase: (flood.replies[h1.address]?.count ?? 0) / 5,
        requestBytes: req
      }
    } finally {
      lab.cleanup()
    }
  } finally {
    dir.remove()
  }
}

export const discoveryBench: Bench = {
  name: 'discovery (issue 3: SSDP, signed describe, peer list)',
  async run (): Promise<Row[]> {
    const rows: Row[] = []
    for (const n of [2, 10, 50]) {
      const t: number[] = []
      for (const seed of SEEDS) t.push(await simDiscovery(n, seed))
      rows.push({ what: `sim: ${n} agents, 5 % loss, all list all (median of ${SEEDS.length} seeds, simulated time)`, value: ms(median(t)), baseline: `max ${ms(Math.max(...t))}`, target: '≤ 3 s', ok: Math.max(...t) <= 3_000 })
    }
    const one = await simFlood(1)
    rows.push({ what: 'sim: flood of 1 000 searches/s from one source, 10 s', value: `${one.toFixed(1)} replies/s`, target: `≤ 1/s (+ burst ${SSDP_SOURCE_REPLIES_BURST})`, ok: one <= 1 + SSDP_SOURCE_REPLIES_BURST / 10 })
    const many = await simFlood(250)
    rows.push({ what: 'sim: flood of 1 000 searches/s from 250 LAN sources, 10 s', value: `${many.toFixed(1)} replies/s`, target: `≤ ${SSDP_REPLIES_PER_SECOND_MAX}/s (+ burst)`, ok: many <= SSDP_REPLIES_PER_SECOND_MAX * 1.1 })
    const why = netnsAvailable()
    if (why !== null) {
      rows.push({ what: 'real processes in namespaces', value: `skipped (${why})` })
      return rows
    }
    const r = await realFigures()
    rows.push({ what: 'real: 2 agents in namespaces, both up to both listed (median of 3)', value: ms(median(r.discoveryMs)), baseline: `max ${ms(Math.max(...r.discoveryMs))}`, target: '≤ 3 s', ok: Math.max(...r.discoveryMs) <= 3_000 })
    rows.push({ what: `real: ssdp:all amplification (reply bytes / ${r.requestBytes}-byte search, median of 3)`, value: `${r.ours.amp.toFixed(2)}× (${r.ours.bytes} B)`, baseline: `node-ssdp ${r.base.amp.toFixed(2)}× (${r.base.bytes} B)`, ratio: `${(r.base.amp / r.ours.amp).toFixed(1)}× less`, target: '≤ 3×', ok: r.ours.amp <= 3 })
    rows.push({ what: 'real: datagrams per ssdp:all search', value: String(r.ours.datagrams), baseline: `node-ssdp ${r.base.datagrams}`, target: '1', ok: r.ours.datagrams === 1 })
    rows.push({ what: 'real: flood of 1 000 searches/s from one source, 5 s', value: `${r.floodOurs.toFixed(1)} replies/s`, baseline: `node-ssdp ${r.floodBase.toFixed(0)} replies/s`, target: `≤ 1/s (+ burst ${SSDP_SOURCE_REPLIES_BURST})`, ok: r.floodOurs <= 1 + SSDP_SOURCE_REPLIES_BURST / 5 })
    return rows
  }
}
