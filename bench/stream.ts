// Live-stream figures (issue 5), each beside a baseline measured in the same run:
//
// * per-hop added latency and end-to-end latency at depth 4: agents (the
//   bundle, as processes) in a chain source → r1 → r2 → r3 → r4, a synthetic
//   8 Mbit/s TS whose packets carry their send time, HTTP readers at every
//   depth in this process; baseline: one hop through a plain Node TCP relay;
// * join to first byte on a node that is not yet in the tree;
// * repair after a relay is SIGKILLed (real processes: the kernel resets the
//   links) and after a silent death (the 1 000-node simulation: heartbeats);
// * continuity, depth, source upload and control overhead under churn (the
//   1 000-node simulation);
// * CPU and RSS of one node relaying to 4 children at 8 Mbit/s with 8 local
//   HTTP players, beside the same agent idle.

import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { request, type ClientRequest } from 'node:http'
import { connect, type Socket } from 'node:net'
import { agentUrl, runBundle, type RunningBundle } from '../test/helpers/bundle'
import { httpRequest, waitFor } from '../test/helpers/http'
import { percentile, runChurn } from '../test/helpers/churn-sim'
import { TsGen } from '../test/helpers/ts'
import { median, mib, ms, type Bench, type Row } from './table'

const TOKEN = 'bench'
/** 8 Mbit/s: 1 MB/s ≈ 5 320 packets/s, in 40 ms frames. */
const PACKETS_PER_FRAME = 211
const FRAME_MS = 40

interface Agent { run: RunningBundle, url: string, linkPort: number, nodeId: string }

async function startAgent (config: Record<string, unknown>): Promise<Agent> {
  const run = await runBundle(['agent', '--config', 'c.json'], { files: { 'c.json': JSON.stringify({ http: { host: '127.0.0.1', port: 0 }, dataDir: 'state', log: { level: 'warn' }, ...config }) } })
  const url = await agentUrl(run)
  const s = (await httpRequest(`${url}/api/status`)).json()
  return { run, url, linkPort: s.link.port, nodeId: s.nodeId }
}

const stopAll = async (agents: Agent[]): Promise<void> => {
  for (const a of agents) a.run.cleanup()
  await Promise.race([Promise.all(agents.map((a) => a.run.exited)), new Promise((r) => setTimeout(r, 3000))])
}

const streamOf = async (a: Agent): Promise<Record<string, any> | undefined> =>
  (await httpRequest(`${a.url}/api/streams`)).json().streams.find((s: { name: string }) => s.name === 'live')

/** Push synthetic stamped TS at 8 Mbit/s until stop(). */
function pusher (url: string): { stop (): void } {
  const gen = new TsGen(25)
  const req = request(`${url}/stream/live`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } }, (res) => { res.resume() })
  req.on('error', () => {})
  const t = setInterval(() => { req.write(gen.frame(PACKETS_PER_FRAME)) }, FRAME_MS)
  return { stop: () => { clearInterval(t); req.end() } }
}

/** Read a stamped TS stream; per packet index, how long after its stamp it arrived. */
function stampReader (open: (onData: (c: Buffer) => void) => { stop (): void }): { lat: Map<number, number>, firstByteMs: () => number, stop (): void } {
  const lat = new Map<number, number>()
  let carry = Buffer.alloc(0)
  let first = 0
  const h = open((c) => {
    const now = performance.now()
    if (first === 0) first = now
    let buf = carry.length > 0 ? Buffer.concat([carry, c]) : c
    let at = 0
    for (; at + 188 <= buf.length; at += 188) {
      if (buf[at] !== 0x47) continue
      lat.set(buf.readUInt32BE(at + 176), now - buf.readDoubleBE(at + 180))
    }
    carry = Buffer.from(buf.subarray(at))
    buf = carry
  })
  return { lat, firstByteMs: () => first, stop: h.stop }
}

function httpStream (url: string) {
  return (onData: (c: Buffer) => void): { stop (): void } => {
    const req: ClientRequest = request(url, (res) => { res.on('data', onData); res.on('error', () => {}) })
    req.on('error', () => {})
    req.end()
    return { stop: () => { req.destroy() } }
  }
}

/** Per packet: latency at depth d+1 minus latency at depth d. */
function hopDiffs (a: Map<number, number>, b: Map<number, number>): number[] {
  const out: number[] = []
  for (const [i, la] of a) { const lb = b.get(i); if (lb !== undefined) out.push(lb - la) }
  return out
}

async function chainLatency (): Promise<{ hops: number[], firstHop: number[], e2e: number[] }> {
  const agents: Agent[] = []
  const readers: Array<ReturnType<typeof stampReader>> = []
  try {
    agents.push(await startAgent({ stream: { pushToken: TOKEN, childrenMax: 1 } }))
    for (let i = 1; i <= 4; i++) agents.push(await startAgent({ stream: { childrenMax: 1 }, discovery: { staticPeers: [agents[i - 1]!.url, agents[0]!.url] } }))
    const p = pusher(agents[0]!.url)
    await waitFor(async () => (await streamOf(agents[0]!))?.newestSeq > 10, 10_000, 'the stream at the source')
    for (const a of agents) {
      readers.push(stampReader(httpStream(`${a.url}/stream/live`)))
      await waitFor(async () => (await streamOf(a))?.attached === true, 10_000, 'attach')
    }
    const depths = await Promise.all(agents.map(async (a) => (await streamOf(a))!.depth as number))
    if (depths.join() !== '0,1,2,3,4') throw new Error(`expected a chain, got depths ${depths.join()}`)
    await new Promise((r) => setTimeout(r, 3000))
    for (const r of readers) r.lat.clear() // measure in steady state
    await new Promise((r) => setTimeout(r, 15_000))
    p.stop()
    const hops: number[] = []
    for (let d = 1; d < 4; d++) hops.push(...hopDiffs(readers[d]!.lat, readers[d + 1]!.lat))
    return { hops, firstHop: hopDiffs(readers[0]!.lat, readers[1]!.lat), e2e: [...readers[4]!.lat.values()] }
  } finally {
    for (const r of readers) r.stop()
    await stopAll(agents)
  }
}

/** The baseline: stamped TS through two chained plain Node TCP relays (processes); the second hop's added latency. */
async function plainRelayLatency (): Promise<number[]> {
  // argv[1]: the relay to dial as upstream (none: the first connection in is the upstream).
  const relayCode = `
    const net = require('net'); const upPort = Number(process.argv[1] || 0); const downs = []; let up = null
    const fan = (d) => { for (const x of downs) x.write(d) }
    if (upPort) { const u = net.connect(upPort, '127.0.0.1', () => u.setNoDelay(true)); u.on('data', fan); u.on('error', () => {}) }
    const s = net.createServer({ noDelay: true }, (c) => {
      c.setNoDelay(true); c.on('error', () => {})
      if (!upPort && up === null) { up = c; c.on('data', fan) } else downs.push(c)
    })
    s.listen(0, '127.0.0.1', () => { process.stdout.write(String(s.address().port) + '\\n') })`
  const relays: ChildProcess[] = []
  const sockets: Socket[] = []
  const start = async (up?: number): Promise<number> => {
    const c = spawn(process.execPath, ['-e', relayCode, ...(up === undefined ? [] : [String(up)])], { stdio: ['ignore', 'pipe', 'inherit'] })
    relays.push(c)
    return await new Promise((resolve) => { c.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))) })
  }
  const dial = (port: number): Promise<Socket> => new Promise((resolve) => { const s = connect(port, '127.0.0.1', () => { s.setNoDelay(true); resolve(s) }); s.on('error', () => {}); sockets.push(s) })
  try {
    const p1 = await start()
    const up = await dial(p1)
    await new Promise((r) => setTimeout(r, 100))
    const p2 = await start(p1)
    const s1 = await dial(p1)
    const s2 = await dial(p2)
    const r1 = stampReader((on) => { s1.on('data', on); return { stop () {} } })
    const r2 = stampReader((on) => { s2.on('data', on); return { stop () {} } })
    await new Promise((r) => setTimeout(r, 300))
    const gen = new TsGen(25)
    const t = setInterval(() => { up.write(gen.frame(PACKETS_PER_FRAME)) }, FRAME_MS)
    await new Promise((r) => setTimeout(r, 10_000))
    clearInterval(t)
    return hopDiffs(r1.lat, r2.lat)
  } finally {
    for (const s of sockets) s.destroy()
    for (const r of relays) r.kill('SIGKILL')
  }
}

async function joinToFirstByte (): Promise<number[]> {
  const agents: Agent[] = []
  try {
    agents.push(await startAgent({ stream: { pushToken: TOKEN } }))
    const p = pusher(agents[0]!.url)
    await waitFor(async () => (await streamOf(agents[0]!))?.newestSeq > 50, 10_000, 'the stream at the source')
    const times: number[] = []
    for (let i = 0; i < 5; i++) {
      const a = await startAgent({ discovery: { staticPeers: [agents[0]!.url] } })
      agents.push(a)
      await waitFor(async () => (await httpRequest(`${a.url}/api/status`)).json().link.links.length > 0, 5000, 'the new node to see its peer')
      const t0 = performance.now()
      const r = stampReader(httpStream(`${a.url}/stream/live`))
      await waitFor(async () => r.firstByteMs() > 0, 10_000, 'the first byte')
      times.push(r.firstByteMs() - t0)
      r.stop()
    }
    p.stop()
    return times
  } finally {
    await stopAll(agents)
  }
}

/** source → relay → leaf, the relay SIGKILLed: how long the leaf takes to re-attach, and whether it lost a chunk. */
async function killedRelayRepair (): Promise<{ attachMs: number[], lost: number, gaps: number }> {
  const attachMs: number[] = []
  let lost = 0
  let gaps = 0
  for (let trial = 0; trial < 5; trial++) {
    const agents: Agent[] = []
    try {
      const src = await startAgent({ stream: { pushToken: TOKEN, childrenMax: 1 } })
      agents.push(src)
      const relay = await startAgent({ stream: { childrenMax: 1 }, discovery: { staticPeers: [src.url] } })
      agents.push(relay)
      const leaf = await startAgent({ discovery: { staticPeers: [src.url, relay.url] } })
      agents.push(leaf)
      const p = pusher(src.url)
      await waitFor(async () => (await streamOf(src))?.newestSeq > 10, 10_000, 'the stream')
      const warm = stampReader(httpStream(`${relay.url}/stream/live`))
      await waitFor(async () => (await streamOf(relay))?.attached === true, 10_000, 'relay attach')
      const seqs: number[] = []
      let carry = Buffer.alloc(0)
      const framed = httpStream(`${leaf.url}/stream/live?framing=seq`)((c) => {
        let b = Buffer.concat([carry, c])
        while (b.length >= 6 && b.length >= 6 + b.readUInt16BE(4) * 188) { seqs.push(b.readUInt32BE(0)); b = b.subarray(6 + b.readUInt16BE(4) * 188) }
        carry = Buffer.from(b)
      })
      await waitFor(async () => (await streamOf(leaf))?.depth === 2, 10_000, 'leaf under the relay')
      await new Promise((r) => setTimeout(r, 1000))
      relay.run.child.kill('SIGKILL')
      await new Promise((r) => setTimeout(r, 2500))
      const s = (await streamOf(leaf))!
      const ev = s.reattaches.at(-1)
      if (ev?.attachMs != null) attachMs.push(ev.silentMs + ev.attachMs)
      lost += s.chunks.lost
      gaps += seqs.slice(1).filter((x, i) => x !== seqs[i]! + 1).length
      framed.stop()
      warm.stop()
      p.stop()
    } finally {
      await stopAll(agents)
    }
  }
  return { attachMs, lost, gaps }
}

const cpuTicks = (pid: number): number => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return Number(f[11]) + Number(f[12]) // utime + stime, in clock ticks (100 Hz)
}
const rssOf = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024

async function relayCost (): Promise<{ cpu: number, rss: number, idleCpu: number, idleRss: number, children: number, players: number }> {
  const agents: Agent[] = []
  const readers: Array<{ stop (): void }> = []
  try {
    const src = await startAgent({ stream: { pushToken: TOKEN, childrenMax: 1 } })
    agents.push(src)
    const node = await startAgent({ stream: { childrenMax: 4 }, discovery: { staticPeers: [src.url] } })
    agents.push(node)
    const pid = node.run.child.pid!
    await new Promise((r) => setTimeout(r, 2000))
    const i0 = cpuTicks(pid)
    await new Promise((r) => setTimeout(r, 5000))
    const idleCpu = (cpuTicks(pid) - i0) / 5 // % of one core (100 ticks/s)
    const idleRss = rssOf(pid)
    const p = pusher(src.url)
    await waitFor(async () => (await streamOf(src))?.newestSeq > 10, 10_000, 'the stream')
    for (let i = 0; i < 8; i++) readers.push(httpStream(`${node.url}/stream/live`)((c) => { void c }))
    await waitFor(async () => (await streamOf(node))?.attached === true, 10_000, 'node attach')
    for (let i = 0; i < 4; i++) {
      const c = await startAgent({ stream: { childrenMax: 0 }, discovery: { staticPeers: [node.url, src.url] } })
      agents.push(c)
      readers.push(httpStream(`${c.url}/stream/live`)((x) => { void x }))
      await waitFor(async () => (await streamOf(c))?.attached === true, 10_000, 'child attach')
    }
    const s = (await streamOf(node))!
    await new Promise((r) => setTimeout(r, 3000))
    const t0 = cpuTicks(pid)
    await new Promise((r) => setTimeout(r, 20_000))
    const cpu = (cpuTicks(pid) - t0) / 20
    const rss = rssOf(pid)
    p.stop()
    return { cpu, rss, idleCpu, idleRss, children: s.children.length, players: s.players.length }
  } finally {
    for (const r of readers) r.stop()
    await stopAll(agents)
  }
}

export const streamBench: Bench = {
  name: 'live streams (issue 5)',
  async run (): Promise<Row[]> {
    const plain = await plainRelayLatency()
    const chain = await chainLatency()
    const joins = await joinToFirstByte()
    const repair = await killedRelayRepair()
    const cost = await relayCost()
    const sim = await runChurn({ seed: 1 })
    const p = (xs: number[], q: number): number => percentile(xs, q)
    const pct = (x: number): string => `${(x * 100).toFixed(3)} %`
    return [
      { what: 'per-hop added latency p50 (relay → relay, 8 Mbit/s)', value: ms(p(chain.hops, 50)), baseline: `plain TCP relay ${ms(p(plain, 50))}`, ratio: `+${ms(p(chain.hops, 50) - p(plain, 50))}`, target: '≤ 5 ms', ok: p(chain.hops, 50) <= 5 },
      { what: 'per-hop added latency p99', value: ms(p(chain.hops, 99)), baseline: `plain TCP relay ${ms(p(plain, 99))}`, target: '≤ 20 ms', ok: p(chain.hops, 99) <= 20 },
      { what: 'first hop (source → relay, waits for the signed batch) p50 / p99', value: `${ms(p(chain.firstHop, 50))} / ${ms(p(chain.firstHop, 99))}` },
      { what: 'end-to-end at depth 4, push to player, p50 / p99', value: `${ms(p(chain.e2e, 50))} / ${ms(p(chain.e2e, 99))}`, baseline: `4 plain hops ≈ ${ms(4 * p(plain, 50))}` },
      { what: `join to first byte (median of ${joins.length}, fresh node)`, value: ms(median(joins)), baseline: 'PPLive ~20 s', target: '≤ 0.5 s', ok: median(joins) <= 500 },
      { what: `re-attach after a relay is SIGKILLed (real, ${repair.attachMs.length} trials) p50 / max`, value: `${ms(p(repair.attachMs, 50))} / ${ms(Math.max(...repair.attachMs))}`, baseline: 'SRT/udpxy notice after 5 s', target: '0 chunks lost', ok: repair.lost === 0 && repair.gaps === 0, ratio: `${repair.lost + repair.gaps} lost` },
      { what: 'repair after a silent death (sim, heartbeats) p50 / p95 / max', value: `${ms(p(sim.attachMs, 50))} / ${ms(p(sim.attachMs, 95))} / ${ms(Math.max(...sim.attachMs))}`, target: '≤ 1 s p95, 0 lost', ok: p(sim.attachMs, 95) <= 1000 && sim.churnMissingForSurvivors === 0, ratio: `${sim.churnMissingForSurvivors} lost` },
      { what: `continuity under churn (sim: ${sim.members} nodes, 8 Mbit/s, 10 %/min, 1 % loss)`, value: pct(sim.churnContinuity), baseline: 'CoolStreaming ~0.99, Nemo 99.9 %', target: '≥ 99.9 % of seconds', ok: sim.churnContinuity >= 0.999 },
      { what: 'continuity including the flash crowd (1 000 joins in 20 s first)', value: pct(sim.continuity), baseline: 'seeds 1-7: 99.6-100 %' },
      { what: 'depth (sim) mean / p95 / max', value: `${sim.depthMean.toFixed(1)} / ${sim.depthP95} / ${sim.depthMax}`, baseline: `log₂.₈(1 000) ≈ ${(Math.log(1000) / Math.log(2.8)).toFixed(1)}` },
      { what: 'source upload (sim)', value: `${(sim.sourceUploadBytesPerSec / sim.bitrateBytesPerSec).toFixed(2)}× bitrate`, target: 'constant (4 children)', ok: sim.sourceUploadBytesPerSec <= 4.1 * sim.bitrateBytesPerSec },
      { what: 'control overhead (sim)', value: `${(sim.controlOverhead * 100).toFixed(2)} % of stream bytes` },
      { what: `CPU, one node: ${cost.children} children at 8 Mbit/s + ${cost.players} players`, value: `${cost.cpu.toFixed(0)} % of a core`, baseline: `idle ${cost.idleCpu.toFixed(1)} %` },
      { what: 'RSS of that node (--max-old-space-size=48)', value: mib(cost.rss), baseline: `idle ${mib(cost.idleRss)}`, target: '≤ 64 MB', ok: cost.rss <= 64 * 1048576 }
    ]
  }
}
