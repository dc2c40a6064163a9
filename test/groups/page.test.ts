// The collaboration page in headless Chromium: a stroke drawn in the page of
// one agent appears in the page served by the other; a chat line too; erasing
// deletes the stroke's record everywhere. Skipped (with a line saying so)
// where /usr/bin/chromium is missing.

import { existsSync } from 'node:fs'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { buildAgent, type Agent } from '../../src/agent'
import { checkConfig } from '../../src/config'
import type { GroupsService } from '../../src/groups'
import { createLinuxHal } from '../../src/hal'
import { silentLogger } from '../../src/log'
import { tempDir } from '../helpers/tmp'

const CHROMIUM = '/usr/bin/chromium'

test('a stroke drawn on one agent\'s page appears on the other\'s', async () => {
  if (!existsSync(CHROMIUM)) { console.log(`  skipped: ${CHROMIUM} is not installed (Debian package chromium)`); return }
  const { chromium } = await import('playwright-core')
  const dirs = [tempDir('canopy-gpage-a-'), tempDir('canopy-gpage-b-')]
  const agents: Agent[] = []
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], timeout: 20_000 })
  try {
    for (const d of dirs) {
      const config = checkConfig({ dataDir: d.path, http: { host: '127.0.0.1', port: 0 }, groups: { syncIntervalMs: 500, blockCount: 16 } })
      const a = await buildAgent(config, await createLinuxHal({ dataDir: d.path, roles: config.interfaces }), silentLogger)
      await a.start()
      agents.push(a)
    }
    const [ga, gb] = agents.map((a) => a.services.find((s) => s.name === 'groups') as GroupsService) as [GroupsService, GroupsService]
    const g = await ga.create('sketch')
    await gb.join(ga.invite(g, gb.me, 2, 60_000))
    const [pa, pb] = await Promise.all(agents.map(async (a) => {
      const p = await browser.newPage()
      p.setDefaultTimeout(5_000)
      await p.goto(`${a.url}groups/${g}`)
      return p
    }))
    // draw on A's page
    const box = (await pa!.locator('#c').boundingBox())!
    await pa!.mouse.move(box.x + 50, box.y + 50)
    await pa!.mouse.down()
    for (let i = 1; i <= 10; i++) await pa!.mouse.move(box.x + 50 + 15 * i, box.y + 50 + 8 * i)
    await pa!.mouse.up()
    const t0 = Date.now()
    await pb!.waitForFunction('document.body.dataset.strokes === "1"', undefined, { timeout: 5_000 })
    console.log(`  stroke visible on the other agent's page after ${Date.now() - t0} ms`)
    assert.is(gb.store!.list(g, { type: 'stroke' }).length, 1)
    // chat from B's page shows on A's
    await pb!.fill('#t', 'nice drawing')
    await pb!.press('#t', 'Enter')
    await pa!.waitForFunction('document.getElementById("l").textContent.includes("nice drawing")', undefined, { timeout: 5_000 })
    // erase on B's page: the stroke's record is deleted on A as well
    await pb!.check('#er')
    await pb!.mouse.click(box.x + 50 + 15 * 5, box.y + 50 + 8 * 5)
    await pa!.waitForFunction('document.body.dataset.strokes === "0"', undefined, { timeout: 5_000 })
    assert.is(ga.store!.list(g, { type: 'stroke' }).length, 0)
    assert.is(ga.store!.list(g, { type: 'stroke', deleted: true }).length, 1, 'a tombstone')
  } finally {
    await browser.close()
    for (const a of agents) await a.stop()
    for (const d of dirs) d.remove()
  }
})

test.run()
