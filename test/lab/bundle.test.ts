// The shipped artifact itself: dist/canopy.js alone in an empty folder, under
// the device memory flags.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { connect } from 'node:net'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { BUNDLE_BYTES_MAX } from '../../src/limits'
import { agentUrl, builtBundle, runBundle } from '../helpers/bundle'
import { httpRequest } from '../helpers/http'
import { parsePrometheus } from '../helpers/prometheus'

test('the bundle is one file within its budget', async () => {
  const path = await builtBundle()
  assert.ok(statSync(path).size <= BUNDLE_BYTES_MAX)
})

test('started alone: healthz, status JSON, metrics text, SIGTERM exits 0 within 2 s', async () => {
  const run = await runBundle(['agent', '--http', '127.0.0.1:0', '--data', 'state'])
  try {
    const base = await agentUrl(run)
    const health = await httpRequest(`${base}/healthz`)
    assert.is(health.status, 200)
    const status = (await httpRequest(`${base}/api/status`)).json()
    assert.match(status.nodeId, /^[0-9a-f]{32}$/)
    assert.ok(Array.isArray(status.interfaces))
    const metrics = await httpRequest(`${base}/metrics`)
    const { samples } = parsePrometheus(metrics.text)
    assert.ok(samples.some((s) => s.name === 'canopy_resident_memory_bytes' && s.value > 0))
    assert.is(statSync(join(run.dir, 'state', 'identity.pem')).mode & 0o777, 0o600)
    for (const line of run.stdout().trim().split('\n')) {
      const o = JSON.parse(line)
      assert.ok(typeof o.time === 'string' && typeof o.level === 'string' && typeof o.sub === 'string' && typeof o.msg === 'string')
    }
    const t0 = Date.now()
    run.child.kill('SIGTERM')
    const { code } = await run.exited
    assert.is(code, 0)
    assert.ok(Date.now() - t0 < 2000, `stopped in ${Date.now() - t0} ms`)
    assert.ok(run.stdout().includes('"msg":"stopped"'))
  } finally {
    run.cleanup()
  }
})

test('a second signal exits at once while the first is still draining', async () => {
  const run = await runBundle(['agent', '--http', '127.0.0.1:0', '--data', 'state'])
  try {
    const base = new URL(await agentUrl(run))
    const busy = connect(Number(base.port), base.hostname) // a request still arriving keeps the drain busy
    busy.on('error', () => {})
    busy.write('GET /healthz HTTP/1.1\r\nHost: x\r\n')
    await new Promise((r) => setTimeout(r, 100))
    run.child.kill('SIGTERM')
    await new Promise((r) => setTimeout(r, 100))
    run.child.kill('SIGTERM')
    const { code } = await run.exited
    assert.is(code, 1)
    assert.match(run.stderr(), /second SIGTERM/)
    busy.destroy()
  } finally {
    run.cleanup()
  }
})

test('bad config: exit 2 and one line naming the field', async () => {
  for (const [args, files, field] of [
    [['agent', '--config', 'c.json'], { 'c.json': '{"http":{"port":"x"}}' }, 'http.port'],
    [['agent', '--http', ':x'], {}, 'http.port'],
    [['agent', '--config', 'c.json'], { 'c.json': '{"log":{"level":"chatty"}}' }, 'log.level']
  ] as const) {
    const run = await runBundle([...args], { files })
    const { code } = await run.exited
    run.cleanup()
    assert.is(code, 2)
    assert.is(run.stderr().trim().split('\n').length, 1)
    assert.ok(run.stderr().includes(`"${field}"`), run.stderr())
  }
})

test('unknown command or flag: usage on stderr, exit 2; --version and --help exit 0', async () => {
  for (const [args, want] of [[['frobnicate'], 2], [['agent', '--nope'], 2], [['--version'], 0], [['agent', '--help'], 0]] as const) {
    const run = await runBundle([...args])
    const { code } = await run.exited
    run.cleanup()
    assert.is(code, want, `${args.join(' ')}: ${run.stderr()}`)
    if (want === 2) assert.match(run.stderr(), /Usage|unknown/)
  }
})

test.run()
