import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { buildAgent } from '../../src/agent'
import { checkConfig } from '../../src/config'
import { createSimHal, simNic } from '../../src/hal'
import { memoryLogger } from '../../src/log'
import { httpRequest } from '../helpers/http'
import { parsePrometheus } from '../helpers/prometheus'

const config = (extra: Record<string, unknown> = {}) => checkConfig({ http: { host: '127.0.0.1', port: 0 }, ...extra })

test('an agent on simulated hardware serves its status surface and stops cleanly', async () => {
  const hal = createSimHal({ seed: 5, nics: [simNic('br-lan', [['192.168.1.1', 24]]), simNic('wan', [['203.0.113.7', 24]])] })
  const { logger, lines } = memoryLogger()
  const agent = await buildAgent(config({ name: 'attic' }), hal, logger)
  await agent.start()
  const base = agent.url.replace(/\/$/, '')

  const health = await httpRequest(`${base}/healthz`)
  assert.is(health.status, 200)
  assert.is(health.json().nodeId, agent.identity.nodeId)

  const status = (await httpRequest(`${base}/api/status`)).json()
  assert.is(status.nodeId, agent.identity.nodeId)
  assert.is(status.name, 'attic')
  assert.match(status.version, /^\d+\.\d+\.\d+/)
  assert.ok(status.memory.rssBytes > 0)
  assert.equal(status.interfaces.map((n: { name: string, role: string }) => `${n.name}:${n.role}`), ['br-lan:lan', 'wan:wan'])

  const metrics = await httpRequest(`${base}/metrics`)
  assert.match(String(metrics.headers['content-type']), /text\/plain; version=0\.0\.4/)
  const { samples } = parsePrometheus(metrics.text)
  assert.is(samples.find((s) => s.name === 'canopy_build_info')?.labels.node_id, agent.identity.nodeId)
  assert.is(samples.find((s) => s.name === 'canopy_interfaces' && s.labels.role === 'lan')?.value, 1)

  const page = await httpRequest(`${base}/`)
  assert.match(String(page.headers['content-type']), /text\/html/)
  assert.ok(page.text.includes(agent.identity.nodeId.slice(0, 12)))
  assert.ok(page.text.includes('br-lan'))

  await agent.stop(1000)
  assert.ok(lines.some((l) => l.msg === 'identity created'))
  assert.ok(lines.some((l) => l.msg === 'stopped'))
  const refused = await httpRequest(`${base}/healthz`).then(() => false, () => true)
  assert.ok(refused, 'the port is closed after stop')
})

test('identity survives a restart on the same device', async () => {
  const hal = createSimHal({ seed: 9 })
  const a = await buildAgent(config(), hal, memoryLogger().logger)
  const b = await buildAgent(config(), hal, memoryLogger().logger)
  assert.is(a.identity.nodeId, b.identity.nodeId)
})

test('status page escapes what it shows', async () => {
  const hal = createSimHal({ seed: 2 })
  const agent = await buildAgent(config({ name: '<script>x</script>' }), hal, memoryLogger().logger)
  await agent.start()
  const page = await httpRequest(`${agent.url}`)
  assert.not.ok(page.text.includes('<script>x'))
  assert.ok(page.text.includes('&lt;script&gt;'))
  await agent.stop(500)
})

test.run()
