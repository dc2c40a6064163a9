// Discovery in the agent: /api/describe, /api/peers, the "peers" part of
// /api/status, the status page and the metrics; two real agents on loopback
// find each other through a static peer.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { join } from 'node:path'
import { buildAgent, type Agent } from '../../src/agent'
import { checkConfig } from '../../src/config'
import { createLinuxHal, createSimHal, simNic } from '../../src/hal'
import { silentLogger } from '../../src/log'
import { verifyDescribe } from '../../src/protocol'
import { httpRequest, waitFor } from '../helpers/http'
import { parsePrometheus } from '../helpers/prometheus'
import { tempDir } from '../helpers/tmp'

const config = (extra: Record<string, unknown> = {}) => checkConfig({ http: { host: '127.0.0.1', port: 0 }, ...extra })

test('GET /api/describe: signed by the node key, with the nonce asked for and the real HTTP port', async () => {
  const hal = createSimHal({ seed: 31, nics: [simNic('br-lan', [['192.168.1.1', 24], ['fd00::1', 64]]), simNic('wan', [['203.0.113.7', 24]])] })
  const agent = await buildAgent(config({ name: 'attic', protocol: { udpPort: 9999 } }), hal, silentLogger)
  await agent.start()
  const base = agent.url.replace(/\/$/, '')
  try {
    const plain = await httpRequest(`${base}/api/describe`)
    assert.is(plain.status, 200)
    assert.match(String(plain.headers['content-type']), /application\/json/)
    const v = verifyDescribe(plain.body, { nodeId: agent.identity.nodeId })
    assert.is(v.document.name, 'attic')
    assert.is(v.document.httpPort, Number(new URL(agent.url).port))
    assert.is(v.document.udpPort, 9999)
    assert.equal(v.document.addresses, ['192.168.1.1', 'fd00::1'], 'LAN addresses only, never the WAN one')
    assert.is(v.document.nonce, null)
    const nonce = 'QUJDREVGR0hJSktMTU5PUA'
    const fresh = await httpRequest(`${base}/api/describe?nonce=${nonce}`)
    assert.is(verifyDescribe(fresh.body, { nodeId: agent.identity.nodeId, nonce }).document.nonce, nonce)
    const bad = await httpRequest(`${base}/api/describe?nonce=short`)
    assert.is(bad.status, 400)
    assert.is(bad.json().error.code, 'INPUT_INVALID')
  } finally {
    await agent.stop(1000)
  }
})

test('GET /api/peers, "peers" in /api/status, the status page and the metrics', async () => {
  const hal = createSimHal({ seed: 32, nics: [simNic('br-lan', [['192.168.1.1', 24]])] })
  const agent = await buildAgent(config(), hal, silentLogger)
  await agent.start()
  const base = agent.url.replace(/\/$/, '')
  try {
    assert.equal((await httpRequest(`${base}/api/peers`)).json(), { count: 0, max: 256, peers: [] })
    const status = (await httpRequest(`${base}/api/status`)).json()
    assert.is(status.peers.count, 0)
    assert.equal(status.peers.ssdp.interfaces, [], 'HTTP on loopback: nothing to advertise, so no SSDP socket')
    const page = await httpRequest(`${base}/`)
    assert.ok(page.text.includes('LAN peers (0)'))
    const { samples, types } = parsePrometheus((await httpRequest(`${base}/metrics`)).text)
    assert.is(samples.find((s) => s.name === 'canopy_peers')?.value, 0)
    assert.is(types.get('canopy_ssdp_dropped_total'), 'counter')
    assert.ok(samples.some((s) => s.name === 'canopy_ssdp_dropped_total' && s.labels.reason === 'rate-limited'))
    assert.ok(samples.some((s) => s.name === 'canopy_ssdp_replies_rate_limited_total'))
    assert.ok(samples.some((s) => s.name === 'canopy_ssdp_datagrams_out_total' && s.labels.kind === 'reply'))
  } finally {
    await agent.stop(1000)
  }
})

test('two real agents on loopback: a static peer is fetched, verified and listed, and shown everywhere', async () => {
  const dirs = [tempDir(), tempDir()]
  const agents: Agent[] = []
  try {
    const start = async (dir: string, extra: Record<string, unknown>) => {
      const c = config({ dataDir: join(dir, 'state'), ...extra })
      const hal = await createLinuxHal({ dataDir: c.dataDir, roles: c.interfaces })
      const a = await buildAgent(c, hal, silentLogger)
      agents.push(a)
      await a.start()
      return a
    }
    const b = await start(dirs[1]!.path, { name: 'b' })
    const bPort = Number(new URL(b.url).port)
    const a = await start(dirs[0]!.path, { name: 'a', discovery: { staticPeers: [`http://127.0.0.1:${bPort}`], staticRecheckMs: 10_000 } })
    const base = a.url.replace(/\/$/, '')
    const listed = await waitFor(async () => {
      const j = (await httpRequest(`${base}/api/peers`)).json()
      return j.count === 1 ? j : null
    }, 5_000, 'b in a\'s peer list')
    const p = listed.peers[0]
    assert.is(p.nodeId, b.identity.nodeId)
    assert.is(p.name, 'b')
    assert.is(p.address, '127.0.0.1')
    assert.is(p.httpPort, bPort)
    assert.is(p.via, 'static')
    assert.is(p.publicKey, b.identity.publicKeyText)
    assert.ok(p.expiresInMs > 20_000)
    assert.is((await httpRequest(`${base}/api/status`)).json().peers.count, 1)
    assert.ok((await httpRequest(`${base}/`)).text.includes('LAN peers (1)'))
    const { samples } = parsePrometheus((await httpRequest(`${base}/metrics`)).text)
    assert.is(samples.find((s) => s.name === 'canopy_peers')?.value, 1)
    assert.is(samples.find((s) => s.name === 'canopy_describe_fetches_total' && s.labels.result === 'verified')?.value, 1)
  } finally {
    for (const a of agents) await a.stop(1000)
    for (const d of dirs) d.remove()
  }
})

test.run()
