import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { firmware, firmwareConfigText } from '../../build/firmware'
import { checkConfig } from '../../src/config'
import { FIRMWARE_ENV } from '../helpers/bundle'
import { tempDir } from '../helpers/tmp'

test('the firmware image holds the bundle, init files, config and a true manifest', async () => {
  const { path } = await firmware()
  const d = tempDir()
  try {
    execFileSync('tar', ['-xzf', path, '-C', d.path])
    const manifest = JSON.parse(readFileSync(join(d.path, 'usr/lib/canopy/MANIFEST.json'), 'utf8'))
    const paths = manifest.files.map((f: { path: string }) => f.path)
    for (const p of ['usr/lib/canopy/canopy.js', 'etc/canopy/canopy.json', 'etc/init.d/canopy', 'lib/systemd/system/canopy.service']) assert.ok(paths.includes(p), p)
    for (const f of manifest.files) {
      const data = readFileSync(join(d.path, f.path))
      assert.is(createHash('sha256').update(data).digest('hex'), f.sha256, f.path)
      assert.is(data.length, f.bytes)
      assert.is((statSync(join(d.path, f.path)).mode & 0o777).toString(8), f.mode.slice(1), `${f.path} mode`)
    }
    checkConfig(JSON.parse(readFileSync(join(d.path, 'etc/canopy/canopy.json'), 'utf8')))
    execFileSync('sh', ['-n', join(d.path, 'etc/init.d/canopy')])
    const init = readFileSync(join(d.path, 'etc/init.d/canopy'), 'utf8')
    const unit = readFileSync(join(d.path, 'lib/systemd/system/canopy.service'), 'utf8')
    for (const text of [init, unit]) {
      assert.ok(text.includes('--max-old-space-size=48 --max-semi-space-size=1'))
      // The tests and benchmarks run the bundle with the same environment.
      for (const [k, v] of Object.entries(FIRMWARE_ENV)) assert.ok(text.includes(`${k}=${v}`), k)
    }
    assert.match(init, /USE_PROCD=1/)
    assert.match(init, /procd_set_param respawn/)
    assert.match(unit, /^Restart=on-failure$/m)
    assert.match(unit, /^MemoryMax=/m)
    const version = execFileSync(process.execPath, [join(d.path, 'usr/lib/canopy/canopy.js'), '--version']).toString().trim()
    assert.is(version, manifest.version)
  } finally {
    d.remove()
  }
})

test('the shipped config is every default, with the device data directory', () => {
  const shipped = readFileSync(join(__dirname, '../../firmware/canopy.json'), 'utf8')
  assert.is(shipped, firmwareConfigText(), 'firmware/canopy.json is stale: npm run firmware -- --write-config')
  assert.is(checkConfig(JSON.parse(shipped)).dataDir, '/var/lib/canopy')
})

test('the image is deterministic', async () => {
  const a = readFileSync((await firmware()).path)
  const b = readFileSync((await firmware()).path)
  assert.ok(a.equals(b))
})

test.run()
