import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { buildAgent } from '../../src/agent'
import { checkConfig } from '../../src/config'
import { createSimHal } from '../../src/hal'
import { silentLogger } from '../../src/log'
import { parsePublicKey, privateKeyFromPem } from '../../src/crypto'
import { runCli } from '../helpers/cli'
import { tempDir } from '../helpers/tmp'

test('no arguments: overview on stderr, exit 2; --help exit 0; --version', async () => {
  const none = await runCli([])
  assert.is(none.code, 2)
  assert.match(none.stderr, /canopy agent/)
  const help = await runCli(['--help'])
  assert.is(help.code, 0)
  assert.match(help.stdout, /canopy status/)
  const v = await runCli(['--version'])
  assert.match(v.stdout, /^\d+\.\d+\.\d+\n$/)
})

test('unknown command and unknown flag: exit 2 with usage on stderr', async () => {
  const a = await runCli(['launch'])
  assert.is(a.code, 2)
  assert.match(a.stderr, /unknown command "launch"/)
  const b = await runCli(['status', '--colour'])
  assert.is(b.code, 2)
  assert.match(b.stderr, /unknown flag --colour/)
  assert.match(b.stderr, /Usage: canopy status/)
  const c = await runCli(['keygen', 'extra', '--out', 'x'])
  assert.is(c.code, 2)
})

test('command --help lists its flags', async () => {
  const r = await runCli(['agent', '--help'])
  assert.is(r.code, 0)
  for (const f of ['--config F', '--data DIR', '--http HOST:PORT', '--lan IF[,IF]', '--wan IF', '--print-config']) assert.ok(r.stdout.includes(f), f)
})

test('keygen writes a 0600 private key and its public key, never overwrites', async () => {
  const d = tempDir()
  const out = join(d.path, 'publisher.pem')
  const r = await runCli(['keygen', '--out', out])
  assert.is(r.code, 0, r.stderr)
  const pub = parsePublicKey(r.stdout)
  assert.ok(pub !== null)
  assert.is(statSync(out).mode & 0o777, 0o600)
  assert.equal(privateKeyFromPem(readFileSync(out, 'utf8'), out).publicRaw, pub)
  assert.is(readFileSync(`${out}.pub`, 'utf8').trim(), r.stdout.trim())
  const again = await runCli(['keygen', '--out', out])
  assert.is(again.code, 1)
  assert.match(again.stderr, /exists/)
  assert.is((await runCli(['keygen'])).code, 2)
  d.remove()
})

test('status: human summary, --json, and a clear failure when no agent runs', async () => {
  const agent = await buildAgent(checkConfig({ http: { host: '127.0.0.1', port: 0 }, name: 'den' }), createSimHal({ seed: 4 }), silentLogger)
  await agent.start()
  const url = agent.url
  const human = await runCli(['status', '--agent', url])
  assert.is(human.code, 0, human.stderr)
  assert.match(human.stdout, new RegExp(`node ${agent.identity.nodeId} \\(den\\)`))
  const json = await runCli(['status', '--agent', url, '--json'])
  assert.is(JSON.parse(json.stdout).nodeId, agent.identity.nodeId)
  await agent.stop(500)
  const down = await runCli(['status', '--agent', url])
  assert.is(down.code, 1)
  assert.match(down.stderr, /cannot reach the agent .*canopy agent/)
  const bad = await runCli(['status', '--agent', 'ftp://x'])
  assert.is(bad.code, 2)
})

test.run()
