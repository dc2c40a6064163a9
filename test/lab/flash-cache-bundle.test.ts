// The shipped bundle opens its flash cache from --data on the Linux twin and
// reports it; a second start finds the same flash area.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { agentUrl, runBundle } from '../helpers/bundle'
import { httpRequest } from '../helpers/http'
import { parsePrometheus } from '../helpers/prometheus'

test('the bundle opens <data>/cache at start and shows it in /api/status and /metrics', async () => {
  const config = JSON.stringify({ cache: { blockBytes: 65536, blockCount: 16, bytesMax: 500000 } })
  const run = await runBundle(['agent', '--http', '127.0.0.1:0', '--data', 'state', '--config', 'canopy.json'], { files: { 'canopy.json': config } })
  try {
    const base = await agentUrl(run)
    const status = (await httpRequest(`${base}/api/status`)).json()
    assert.is(status.cache.pieces, 0)
    assert.is(status.cache.bytesMax, 500000)
    assert.is(status.cache.flash.blockBytes, 65536)
    assert.is(status.cache.recovery.mode, 'empty')
    const { samples } = parsePrometheus((await httpRequest(`${base}/metrics`)).text)
    assert.is(samples.find((s) => s.name === 'canopy_cache_up')?.value, 1)
    const geometry = JSON.parse(readFileSync(join(run.dir, 'state', 'cache', 'geometry.json'), 'utf8'))
    assert.equal(geometry, { readBytes: 16, programBytes: 16, blockBytes: 65536, blockCount: 16 })
    run.child.kill('SIGTERM')
    assert.is((await run.exited).code, 0)
  } finally {
    run.cleanup()
  }
})

test('a foreign flash area (another geometry) does not stop the agent', async () => {
  const first = await runBundle(['agent', '--http', '127.0.0.1:0', '--data', 'state'])
  let dir = ''
  try {
    await agentUrl(first)
    dir = first.dir
    assert.ok(existsSync(join(dir, 'state', 'cache', 'geometry.json')))
    first.child.kill('SIGTERM')
    await first.exited
    const other = JSON.stringify({ cache: { blockBytes: 65536, blockCount: 16, bytesMax: 500000 } })
    const second = await runBundle(['agent', '--http', '127.0.0.1:0', '--data', join(dir, 'state'), '--config', 'canopy.json'], { files: { 'canopy.json': other } })
    try {
      const base = await agentUrl(second)
      const status = (await httpRequest(`${base}/api/status`)).json()
      assert.match(status.cache.error, /FLASH_GEOMETRY_MISMATCH/)
      assert.is((await httpRequest(`${base}/healthz`)).status, 200)
      second.child.kill('SIGTERM')
      await second.exited
    } finally {
      second.cleanup()
    }
  } finally {
    first.cleanup()
  }
})

test.run()
