// canopy keygen / publish / fetch end to end: a publisher signs a file, an
// origin serves both, and fetch gets it verified, alone or through an agent,
// with JSON progress lines and a summary; untrusted manifests are refused.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync, writeFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { createSeededRandom } from '../../src/hal'
import { runCli } from '../helpers/cli'
import { startOrigin } from '../helpers/origin'
import { tempDir } from '../helpers/tmp'
import { buildContentLan } from '../helpers/content-lan'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

test('publish, then fetch alone (no agent) and through an agent: the same verified bytes', async () => {
  const dir = tempDir()
  const origin = await startOrigin()
  try {
    const key = join(dir.path, 'pub.pem')
    assert.is((await runCli(['keygen', '--out', key])).code, 0)
    const file = Buffer.from(createSeededRandom(1).bytes(300_000))
    writeFileSync(join(dir.path, 'app.bin'), file)
    const pub = await runCli(['publish', join(dir.path, 'app.bin'), '--key', key, '--url', origin.url('/app.bin'), '--piece-size', '65536'])
    assert.is(pub.code, 0, pub.stderr)
    assert.match(pub.stdout, /app\.bin\.canopy\.json: "app\.bin", 300000 bytes in 5 pieces of 65536, content id [0-9a-f]{64}/)
    origin.files.set('/app.bin', { body: file })
    origin.files.set('/app.bin.canopy.json', { body: readFileSync(join(dir.path, 'app.bin.canopy.json')) })
    const murl = origin.url('/app.bin.canopy.json')

    const refused = await runCli(['fetch', murl, '--out', join(dir.path, 'x'), '--agent', 'http://127.0.0.1:1'])
    assert.is(refused.code, 1)
    assert.match(refused.stderr, /not trusted here; add it to trustedPublishers or pass --trust ed25519:/)
    assert.not.ok(existsSync(join(dir.path, 'x')) || existsSync(join(dir.path, 'x.part')), 'nothing left behind')

    const alone = await runCli(['fetch', murl, '--out', join(dir.path, 'alone.bin'), '--agent', 'http://127.0.0.1:1', '--trust', `${key}.pub`])
    assert.is(alone.code, 0, alone.stderr)
    const lines = alone.stdout.trim().split('\n').map((l) => JSON.parse(l))
    assert.ok(lines.some((l) => l.event === 'progress'))
    const done = lines.pop()
    assert.is(done.event, 'done')
    assert.is(done.via, 'alone')
    assert.is(done.bytes, file.length)
    assert.is(done.fromOriginBytes, file.length)
    assert.ok(readFileSync(join(dir.path, 'alone.bin')).equals(file))

    const lan = await buildContentLan({ nodes: 1, trusted: [] })
    try {
      const via = await runCli(['fetch', murl, '--out', join(dir.path, 'via.bin'), '--agent', lan.nodes[0]!.url, '--trust', readFileSync(`${key}.pub`, 'utf8').trim()])
      assert.is(via.code, 0, via.stderr)
      const d = JSON.parse(via.stdout.trim().split('\n').pop()!)
      assert.is(d.via, 'agent')
      assert.is(sha(readFileSync(join(dir.path, 'via.bin'))), sha(file))
      assert.is(d.fromOriginBytes, file.length, 'the agent is its own provider here')
    } finally {
      await lan.stop()
    }
    assert.is((await runCli(['publish', join(dir.path, 'app.bin'), '--key', key])).code, 2, 'usage: --url is required')
  } finally {
    await origin.close()
    dir.remove()
  }
})

test.run()
