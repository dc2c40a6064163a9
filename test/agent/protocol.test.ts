// The LAN protocol on a whole agent: two agents on the simulated network
// (real HTTP, simulated UDP and clock) elect a provider shown in /api/status,
// resolve content through GET /api/resolve, and count it all in /metrics.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { buildAgent, type Agent } from '../../src/agent'
import { checkConfig } from '../../src/config'
import { SimClock, SimNetwork, createSimHal } from '../../src/hal'
import { silentLogger } from '../../src/log'
import { MemoryContentIndex, StaticPeerDirectory } from '../../src/protocol'
import { httpRequest, type Reply } from '../helpers/http'
import { parsePrometheus } from '../helpers/prometheus'

const ID = 'aa'.repeat(32)

async function pair () {
  const clock = new SimClock()
  const network = new SimNetwork(clock, { seed: 4, conditions: { latencyMs: 1 } })
  const made: Array<{ agent: Agent, peers: StaticPeerDirectory, content: MemoryContentIndex, address: string }> = []
  for (const [i, address] of ['192.168.7.1', '192.168.7.2'].entries()) {
    const ifaces = [{ nic: 'br-lan', address, prefixLength: 24 }]
    if (i === 0) ifaces.push({ nic: 'wan', address: '203.0.113.50', prefixLength: 24 })
    const hal = createSimHal({ seed: 40 + i, host: network.addHost(`a${i}`, ifaces) })
    const peers = new StaticPeerDirectory()
    const content = new MemoryContentIndex()
    const agent = await buildAgent(checkConfig({ http: { host: '127.0.0.1', port: 0 } }), hal, silentLogger, { peers, content })
    made.push({ agent, peers, content, address })
  }
  for (const a of made) {
    for (const b of made) {
      if (a !== b) b.peers.set({ nodeId: a.agent.identity.nodeId, publicKey: a.agent.identity.publicKey, address: a.address, httpPort: 8787, udpPort: 8787, capabilities: [], name: '', version: '', lastSeenMs: 0, expiresMs: Infinity })
    }
  }
  for (const a of made) await a.agent.start()
  return { clock, made }
}

/** An HTTP request to an agent whose protocols run on simulated time: advance it while waiting. */
async function during (clock: SimClock, request: Promise<Reply>): Promise<Reply> {
  let done = false
  const p = request.finally(() => { done = true })
  for (let i = 0; i < 2000 && !done; i++) await clock.advance(2)
  return p
}

test('two agents: provider in /api/status, content through /api/resolve, counted in /metrics', async () => {
  const { clock, made } = await pair()
  const [gw, stb] = made as [typeof made[0], typeof made[0]]
  try {
    await clock.advance(1_000)
    const status = (await httpRequest(`${stb.agent.url}api/status`)).json()
    assert.is(status.provider.role, 'follower')
    assert.is(status.provider.provider.nodeId, gw.agent.identity.nodeId, 'the gateway (WAN access) is the provider')
    assert.is(status.wire.port, 8787)
    assert.is((await httpRequest(`${gw.agent.url}api/status`)).json().provider.role, 'provider')

    gw.content.hold(ID, [[0, 10]])
    const hit = (await during(clock, httpRequest(`${stb.agent.url}api/resolve?content=${ID}&pieces=2-5`))).json()
    assert.is(hit.outcome, 'hit')
    assert.is(hit.holders[0].nodeId, gw.agent.identity.nodeId)
    assert.match(hit.holders[0].baseUrl, /^http:\/\/192\.168\.7\.1:\d+$/)
    assert.equal(hit.holders[0].pieces, [[0, 10]])
    const miss = (await during(clock, httpRequest(`${stb.agent.url}api/resolve?content=https://example.com/x.bin`))).json()
    assert.is(miss.outcome, 'miss')
    assert.is(miss.provider.nodeId, gw.agent.identity.nodeId)
    const bad = await httpRequest(`${stb.agent.url}api/resolve?content=nope`)
    assert.is(bad.status, 400)
    assert.is(bad.json().error.code, 'INPUT_INVALID')
    assert.is((await httpRequest(`${stb.agent.url}api/resolve?content=${ID}&pieces=9-1`)).status, 400)

    const { samples } = parsePrometheus((await httpRequest(`${stb.agent.url}metrics`)).text)
    const value = (name: string, labels: Record<string, string>): number | undefined =>
      samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
    assert.is(value('canopy_resolve_lookups_total', { outcome: 'hit' }), 1)
    assert.is(value('canopy_resolve_lookups_total', { outcome: 'miss' }), 1)
    assert.ok(value('canopy_wire_datagrams_total', { direction: 'out', type: 'NEED' })! >= 4)
    assert.ok(value('canopy_wire_datagrams_total', { direction: 'in', type: 'HEARTBEAT' })! >= 1)
    assert.is(value('canopy_wire_dropped_total', { reason: 'signature' }), 0)
    assert.is(value('canopy_provider_role', { role: 'follower' }), 1)
    assert.is(value('canopy_provider_known', {}), 1)
  } finally {
    for (const a of made) await a.agent.stop(500)
  }
})

test.run()
