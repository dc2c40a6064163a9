// The household lab, small (3 devices and a corrupting one, a few MB over a
// 20 Mbit/s WAN), on every npm test: WAN bytes from nginx's own log, every
// copy's SHA-256, and the five scenarios of the issue. The full lab with its
// figures is npm run lab:house (bench/house.ts).

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { netnsAvailable } from '../helpers/netns'
import { HouseLab } from './house'
import { execFileSync } from 'node:child_process'

const why = netnsAvailable() ?? (() => { try { execFileSync('nginx', ['-v'], { stdio: 'ignore' }); return null } catch { return 'needs nginx' } })()
const SIZE = 4 * 1024 * 1024

test('household lab (small): one WAN crossing per file, every copy right, a corrupt peer harmless, the provider\'s death survived', async () => {
  if (why !== null) { console.log(`  skipped (${why})`); return }
  const lab = new HouseLab({ devices: 3, withEvil: true, sizeBytes: SIZE, wanMbit: 20, verbose: true })
  try {
    await lab.setup()
    const base = await lab.baseline()
    assert.is(base.good, 3)
    assert.ok(base.wanBytes >= 3 * SIZE, 'the baseline crosses the WAN once per device')
    for (const o of [await lab.allAtOnce(), await lab.staggered(500), await lab.proxyClients()]) {
      assert.is(o.good, o.expected, `${o.scenario}: every copy right`)
      assert.ok(o.wanBytes <= 1.01 * SIZE, `${o.scenario}: WAN ${o.wanBytes} bytes for ${SIZE}`)
      assert.ok(o.perDevice.every((d) => d.fromOriginBytes === 0), `${o.scenario}: only the provider touched the origin`)
    }
    const d = await lab.corruptPeer()
    assert.is(d.good, d.expected, 'no corrupt copy')
    const e = await lab.providerDies(700)
    assert.is(e.good, e.expected, 'every device finished after the provider died')
  } finally {
    lab.cleanup()
  }
})

test.run()
