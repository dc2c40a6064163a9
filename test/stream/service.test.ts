// Streams on two real agents in this process (real sockets, real clock):
// ingest with its token, two players on another node sharing one
// subscription, byte-identical TS from a start point, /api/streams,
// /metrics, the status page, the end of a stream, and a prompt stop.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { request } from 'node:http'
import { buildAgent, type Agent } from '../../src/agent'
import { checkConfig } from '../../src/config'
import { createLinuxHal } from '../../src/hal'
import { silentLogger } from '../../src/log'
import type { LinkService } from '../../src/protocol/link'
import { ts } from '../../src/stream'
import { httpRequest, waitFor } from '../helpers/http'
import { parsePrometheus } from '../helpers/prometheus'
import { tempDir } from '../helpers/tmp'
import { TsGen, packetIndex } from '../helpers/ts'

async function agent (extra: Record<string, unknown>): Promise<{ agent: Agent, url: string, linkPort: number, cleanup (): Promise<void> }> {
  const dir = tempDir('canopy-stream-')
  const config = checkConfig({ dataDir: dir.path, http: { host: '127.0.0.1', port: 0 }, ...extra })
  const hal = await createLinuxHal({ dataDir: config.dataDir, roles: config.interfaces })
  const a = await buildAgent(config, hal, silentLogger)
  await a.start()
  const link = a.services.find((s) => s.name === 'link') as unknown as LinkService
  return { agent: a, url: a.url.replace(/\/$/, ''), linkPort: link.host.listenPort, cleanup: async () => { await a.stop(1000); dir.remove() } }
}

/** POST a live body: frames every 40 ms until stop(); resolves with the agent's answer. */
function push (url: string, token: string | null, frames = Infinity): { done: Promise<{ status: number, body: string }>, sent: Buffer[], stop (): void } {
  const gen = new TsGen(10)
  const sent: Buffer[] = []
  let timer: NodeJS.Timeout | null = null
  const done = new Promise<{ status: number, body: string }>((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: token === null ? {} : { authorization: `Bearer ${token}` } }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => { if (timer !== null) clearInterval(timer); resolve({ status: res.statusCode ?? 0, body }) })
    })
    req.on('error', (e) => { if (timer !== null) clearInterval(timer); reject(e) })
    let n = 0
    timer = setInterval(() => {
      if (n++ >= frames) { clearInterval(timer!); req.end(); return }
      const f = gen.frame(20)
      sent.push(f)
      req.write(f)
    }, 40)
  })
  return { done, sent, stop: () => { if (timer !== null) clearInterval(timer); timer = null } }
}

/** Read a live response for ms (or to its end). */
function read (url: string, ms: number): Promise<{ status: number, data: Buffer, ended: boolean, type: string }> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    const req = request(url, (res) => {
      const t = setTimeout(() => { req.destroy(); resolve({ status: res.statusCode ?? 0, data: Buffer.concat(parts), ended: false, type: String(res.headers['content-type']) }) }, ms)
      res.on('data', (c: Buffer) => parts.push(c))
      res.on('end', () => { clearTimeout(t); resolve({ status: res.statusCode ?? 0, data: Buffer.concat(parts), ended: true, type: String(res.headers['content-type']) }) })
      res.on('error', () => {})
    })
    req.on('error', reject)
    req.end()
  })
}

test('ingest needs the token; two players on another node get the same byte-identical TS from a start point', async () => {
  const a = await agent({ stream: { pushToken: 's3cret' } })
  const b = await agent({ discovery: { staticPeers: [a.url] }, stream: { lingerMs: 0 } })
  const off = await agent({})
  try {
    assert.is((await push(`${a.url}/stream/live`, null, 1).done).status, 401)
    assert.is((await push(`${a.url}/stream/live`, 'wrong', 1).done).status, 401)
    assert.is((await push(`${off.url}/stream/live`, 'x', 1).done).status, 403, 'ingest disabled without a token')
    const p = push(`${a.url}/stream/live`, 's3cret', 120)
    await new Promise((r) => setTimeout(r, 700))
    assert.is((await push(`${a.url}/stream/live`, 's3cret', 1).done).status, 409, 'one pusher per name')
    await waitFor(async () => (await httpRequest(`${b.url}/api/peers`)).json().count > 0, 5000, 'b lists a as a peer')
    const [r1, r2] = await Promise.all([read(`${b.url}/stream/live`, 2500), read(`${b.url}/stream/live`, 2500)])
    for (const r of [r1, r2]) {
      assert.is(r.status, 200)
      assert.is(r.type, 'video/mp2t')
      assert.ok(r.data.length > 100 * 188, `${r.data.length} bytes`)
      assert.is(r.data.length % 188 === 0 || !r.ended, true)
      const whole = r.data.subarray(0, r.data.length - (r.data.length % 188))
      assert.is(ts.pidOf(whole), 0, 'starts at a PAT')
      const sent = Buffer.concat(p.sent)
      const at = sent.indexOf(whole.subarray(0, 188))
      assert.ok(at >= 0 && at % 188 === 0, 'the first packet is one the source sent')
      assert.ok(sent.subarray(at, at + whole.length).equals(whole), 'byte-identical, nothing missing, nothing added')
      const cc = new ts.ContinuityChecker()
      for (let i = 0; i < whole.length; i += 188) cc.check(whole, i)
      assert.is(cc.errors, 0)
      assert.ok(packetIndex(whole, 188) === packetIndex(whole) + 1)
    }
    const streams = (await httpRequest(`${b.url}/api/streams`)).json().streams
    assert.is(streams.length, 1)
    assert.is(streams[0].name, 'live')
    assert.is(streams[0].depth, 1)
    const metrics = parsePrometheus((await httpRequest(`${b.url}/metrics`)).text)
    assert.ok((metrics.samples.find((s) => s.name === 'canopy_stream_chunks_received_total' && s.labels.stream === 'live')?.value ?? 0) > 10)
    const page = (await httpRequest(`${b.url}/`)).text
    assert.ok(page.includes('Stream trees') && page.includes('(this node)'))
    // The pusher stops: the stream ends for the players.
    const tail = read(`${b.url}/stream/live?framing=seq`, 8000)
    const answer = await p.done
    assert.is(answer.status, 200)
    assert.ok(JSON.parse(answer.body).chunks > 50)
    const t = await tail
    assert.ok(t.ended, 'the player saw the end of the stream')
    let prev = -1
    for (let i = 0; i + 6 <= t.data.length;) {
      const seq = t.data.readUInt32BE(i)
      const n = t.data.readUInt16BE(i + 4)
      if (prev !== -1) assert.is(seq, prev + 1, 'seq framing: consecutive chunks')
      prev = seq
      i += 6 + n * 188
    }
    // Stream over, players gone, session left: every pooled frame is back in b's pool.
    await waitFor(async () => (await httpRequest(`${b.url}/api/status`)).json().link.framePool.inUse === 0, 3000, 'the frame pool to drain')
    assert.ok((await httpRequest(`${b.url}/api/status`)).json().link.framePool.taken > 100, 'chunks were received into the pool')
  } finally {
    await Promise.all([a.cleanup(), b.cleanup(), off.cleanup()])
  }
})

test('an unknown stream is a 404; stopping the agent ends its players at once', async () => {
  const a = await agent({ stream: { pushToken: 't' } })
  try {
    const missing = await read(`${a.url}/stream/nothing-here`, 10_000)
    assert.is(missing.status, 404)
    const p = push(`${a.url}/stream/live`, 't')
    await new Promise((r) => setTimeout(r, 500))
    const playing = read(`${a.url}/stream/live`, 10_000)
    await new Promise((r) => setTimeout(r, 500))
    const t0 = Date.now()
    await a.agent.stop(1500)
    const r = await playing
    assert.ok(Date.now() - t0 < 1500, `stopped in ${Date.now() - t0} ms`)
    assert.ok(r.data.length > 0)
    p.stop()
    await p.done.catch(() => {})
  } finally {
    await a.cleanup()
  }
})

test.run()
