// Real processes, real multicast: the built bundle in Linux network
// namespaces joined by a bridge, against each other and against independent
// SSDP stacks (node-ssdp's client and server, GUPnP's gssdp-discover).
// node-ssdp runs only inside a namespace (it binds 1900 and is fragile:
// design.md) and only sees well-formed traffic from us.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { CANOPY_DEVICE_TYPE, deviceUuid } from '../../src/protocol/ssdp/names'
import { NODE_FLAGS, builtBundle } from '../helpers/bundle'
import { createNetnsLab, netnsAvailable, type LabHost, type NetnsLab } from '../helpers/netns'
import { tempDir } from '../helpers/tmp'

const unavailable = netnsAvailable()
const ROOT = join(__dirname, '..', '..')
const FIXTURES = join(__dirname, 'fixtures')
const HTTP = 8787

interface RunningAgent { proc: ChildProcess, nodeId: string, upAt: number, stop (): Promise<void> }

async function startAgent (lab: NetnsLab, host: LabHost, dataDir: string): Promise<RunningAgent> {
  const bundle = await builtBundle()
  const proc = lab.spawn(host, process.execPath, [...NODE_FLAGS, bundle, 'agent', '--http', `0.0.0.0:${HTTP}`, '--data', dataDir], { env: { PATH: process.env.PATH } })
  let err = ''
  proc.stderr!.on('data', (c: Buffer) => { err += c.toString() })
  proc.stdout!.resume()
  const end = Date.now() + 10_000
  while (Date.now() < end) {
    const m = /node ([0-9a-f]{32}) is up/.exec(err)
    if (m !== null) {
      return {
        proc,
        nodeId: m[1]!,
        upAt: Date.now(),
        stop: () => new Promise((resolve) => {
          if (proc.exitCode !== null) { resolve(); return }
          proc.once('exit', () => { resolve() })
          proc.kill('SIGTERM')
        })
      }
    }
    if (proc.exitCode !== null) throw new Error(`agent in ${host.ns} exited: ${err}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`agent in ${host.ns} did not come up: ${err}`)
}

async function peersOf (lab: NetnsLab, host: LabHost): Promise<{ count: number, peers: Array<Record<string, unknown>> }> {
  return JSON.parse(await lab.exec(host, 'curl', ['-s', '-m', '2', `http://127.0.0.1:${HTTP}/api/peers`], 3_000))
}

/** Poll until fn() is truthy or deadlineMs (real time) passes. */
async function within<T> (deadlineMs: number, fn: () => Promise<T | null>): Promise<T | null> {
  const end = Date.now() + deadlineMs
  for (;;) {
    const v = await fn().catch(() => null)
    if (v !== null || Date.now() > end) return v
    await new Promise((r) => setTimeout(r, 50))
  }
}

function labTest (name: string, hosts: number, body: (lab: NetnsLab, dir: string) => Promise<void>): void {
  test(name, async () => {
    if (unavailable !== null) { console.log(`  skipped (${unavailable}): ${name}`); return }
    const lab = createNetnsLab(hosts)
    const dir = tempDir('canopy-lab-')
    try {
      await body(lab, dir.path)
    } finally {
      lab.cleanup()
      dir.remove()
    }
  })
}

labTest('two agents in two namespaces joined by a bridge find each other over real multicast within 3 s', 2, async (lab, dir) => {
  const [h0, h1] = lab.hosts as [LabHost, LabHost]
  const [a, b] = await Promise.all([startAgent(lab, h0, join(dir, 'a')), startAgent(lab, h1, join(dir, 'b'))])
  try {
    const bothUp = Math.max(a.upAt, b.upAt)
    const found = await within(3_000, async () => {
      const [pa, pb] = await Promise.all([peersOf(lab, h0), peersOf(lab, h1)])
      return pa.count === 1 && pb.count === 1 ? [pa, pb] : null
    })
    const took = Date.now() - bothUp
    assert.ok(found !== null, `not found within 3 s (${took} ms)`)
    console.log(`  found each other ${took} ms after both were up`)
    const [pa, pb] = found
    assert.is(pa.peers[0]!.nodeId, b.nodeId)
    assert.is(pa.peers[0]!.address, h1.address)
    assert.is(pa.peers[0]!.via, 'ssdp')
    assert.is(pb.peers[0]!.nodeId, a.nodeId)
    // A clean stop says byebye: the other side forgets at once, not at max-age.
    await b.stop()
    const forgotten = await within(2_000, async () => ((await peersOf(lab, h0)).count === 0 ? true : null))
    assert.ok(forgotten, 'byebye removed the peer')
  } finally {
    await Promise.all([a.stop(), b.stop()])
  }
})

labTest("node-ssdp's client finds our agent (for our type and for ssdp:all), with small replies", 2, async (lab, dir) => {
  const [h0, h1] = lab.hosts as [LabHost, LabHost]
  const agent = await startAgent(lab, h0, join(dir, 'a'))
  try {
    for (const st of [CANOPY_DEVICE_TYPE, 'ssdp:all']) {
      const out = await lab.exec(h1, process.execPath, ['-r', 'esbuild-register', join(FIXTURES, 'node-ssdp-client.ts'), st, '4000'], 15_000)
      const replies = out.trim().split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as { headers: Record<string, string>, status: number, address: string, size: number })
      const ours = replies.filter((r) => r.address === h0.address)
      assert.is(ours.length, 1, `${st}: one reply from our agent: ${out}`)
      const r = ours[0]!
      assert.is(r.status, 200)
      assert.is(r.headers.ST, CANOPY_DEVICE_TYPE)
      assert.is(r.headers.USN, `${deviceUuid(agent.nodeId)}::${CANOPY_DEVICE_TYPE}`)
      assert.is(r.headers.LOCATION, `http://${h0.address}:${HTTP}/api/describe`)
      assert.ok(r.size <= 512, `${r.size} bytes`)
    }
  } finally {
    await agent.stop()
  }
})

labTest("our agent's search sees a node-ssdp server advertising our type, and lists it once its description verifies", 2, async (lab, dir) => {
  const [h0, h1] = lab.hosts as [LabHost, LabHost]
  const server = lab.spawn(h1, process.execPath, ['-r', 'esbuild-register', join(FIXTURES, 'node-ssdp-server.ts'), '77', h1.address], { cwd: ROOT })
  let out = ''
  server.stdout!.on('data', (c: Buffer) => { out += c.toString() })
  server.stderr!.on('data', (c: Buffer) => { out += c.toString() })
  const ready = await within(10_000, async () => /ready ([0-9a-f]{32})/.exec(out)?.[1] ?? null)
  assert.ok(ready !== null, `node-ssdp server did not start: ${out}`)
  const agent = await startAgent(lab, h0, join(dir, 'a'))
  try {
    // node-ssdp's first NOTIFY comes 3 s after its start; our search at start gets its reply well before.
    const listed = await within(3_000, async () => {
      const p = await peersOf(lab, h0)
      return p.count === 1 ? p.peers[0]! : null
    })
    assert.ok(listed !== null, `not listed within 3 s; server said: ${out}`)
    assert.is(listed.nodeId, ready)
    assert.is(listed.name, 'node-ssdp')
    assert.is(listed.address, h1.address)
    assert.is(listed.location, `http://${h1.address}:8080/api/describe`)
    const status = JSON.parse(await lab.exec(h0, 'curl', ['-s', '-m', '2', `http://127.0.0.1:${HTTP}/api/status`]))
    assert.ok(status.peers.ssdp.heard.reply >= 1, `our search got node-ssdp's reply: ${JSON.stringify(status.peers.ssdp)}`)
  } finally {
    await agent.stop()
    server.kill('SIGTERM')
  }
})

labTest('gssdp-discover (GUPnP) lists our agent\'s type', 2, async (lab, dir) => {
  const [h0, h1] = lab.hosts as [LabHost, LabHost]
  const agent = await startAgent(lab, h0, join(dir, 'a'))
  try {
    const out = await lab.exec(h1, 'gssdp-discover', ['-i', 'eth0', '-t', CANOPY_DEVICE_TYPE, '-n', '3'], 15_000)
    assert.ok(out.includes(`${deviceUuid(agent.nodeId)}::${CANOPY_DEVICE_TYPE}`), out)
    assert.ok(out.includes(`http://${h0.address}:${HTTP}/api/describe`), out)
  } finally {
    await agent.stop()
  }
})

test.run()
