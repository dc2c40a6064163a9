// canopy stream push / play: usage, unreachable agents, and a round trip
// through a real agent in this process.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { PassThrough } from 'node:stream'
import { buildAgent } from '../../src/agent'
import { main } from '../../src/cli/main'
import { checkConfig } from '../../src/config'
import { createLinuxHal } from '../../src/hal'
import { silentLogger } from '../../src/log'
import { runCli } from '../helpers/cli'
import { tempDir } from '../helpers/tmp'
import { TsGen } from '../helpers/ts'

test('usage: a name is needed and checked, push needs a token; --help lists the flags', async () => {
  assert.is((await runCli(['stream', 'push'])).code, 2)
  const bad = await runCli(['stream', 'play', 'no/slashes'])
  assert.is(bad.code, 2)
  assert.match(bad.stderr, /NAME is 1-64/)
  const noToken = await runCli(['stream', 'push', 'live'])
  assert.is(noToken.code, 2)
  assert.match(noToken.stderr, /--token/)
  const help = await runCli(['stream', 'push', '--help'])
  assert.ok(help.stdout.includes('--agent URL') && help.stdout.includes('--token T'))
  const agentHelp = await runCli(['agent', '--help'])
  assert.ok(agentHelp.stdout.includes('--push-token T'))
  const cfg = await runCli(['agent', '--push-token', 'abc', '--print-config'])
  assert.is(JSON.parse(cfg.stdout).stream.pushToken, 'abc')
})

test('an agent that is not there: exit 1 and a message that says what to do', async () => {
  const play = await runCli(['stream', 'play', 'live', '--agent', 'http://127.0.0.1:9'])
  assert.is(play.code, 1)
  assert.match(play.stderr, /cannot reach the agent/)
})

test('push from stdin and play to stdout through one agent', async () => {
  const dir = tempDir('canopy-cli-stream-')
  const config = checkConfig({ dataDir: dir.path, http: { host: '127.0.0.1', port: 0 }, stream: { pushToken: 'tok' } })
  const agent = await buildAgent(config, await createLinuxHal({ dataDir: dir.path, roles: config.interfaces }), silentLogger)
  await agent.start()
  const url = agent.url.replace(/\/$/, '')
  try {
    const io = () => {
      const stdout = new PassThrough(); const stderr = new PassThrough(); const stdin = new PassThrough()
      const out: Buffer[] = []; let err = ''
      stdout.on('data', (c: Buffer) => out.push(c)); stderr.on('data', (c: Buffer) => { err += c.toString() })
      return { io: { stdout, stderr, stdin, env: {} }, out, err: () => err }
    }
    const pusher = io()
    const pushing = main(['stream', 'push', 'live', '--agent', url, '--token', 'tok'], pusher.io)
    const gen = new TsGen(5)
    let n = 0
    const feed = setInterval(() => { pusher.io.stdin.write(gen.frame(20)); if (++n === 60) { clearInterval(feed); pusher.io.stdin.end() } }, 40)
    await new Promise((r) => setTimeout(r, 600))
    const player = io()
    const played = await main(['stream', 'play', 'live', '--agent', url], player.io)
    assert.is(await pushing, 0, pusher.err())
    assert.match(pusher.err(), /stream live ended: \d+ bytes, \d+ chunks/)
    assert.is(played, 0, player.err())
    const data = Buffer.concat(player.out)
    assert.ok(data.length > 20 * 188, `${data.length} bytes played`)
    assert.is(data.length % 188, 0)
    assert.is(data[0], 0x47)
  } finally {
    await agent.stop(1000)
    dir.remove()
  }
})

test.run()
