import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { checkConfig, defaultConfig, mergeConfig } from '../../src/config'
import { CanopyError } from '../../src/errors'
import { parseHttpFlag } from '../../src/cli/commands/agent'
import { runCli } from '../helpers/cli'
import { tempDir } from '../helpers/tmp'

// Each bad config must exit 2 with one line on stderr that names the field.
const BAD: Array<[string, unknown, string]> = [
  ['port not a number', { http: { port: 'eighty' } }, 'http.port'],
  ['port out of range', { http: { port: 70000 } }, 'http.port'],
  ['port fractional', { http: { port: 80.5 } }, 'http.port'],
  ['unknown top-level field', { htttp: {} }, 'htttp'],
  ['unknown nested field', { http: { prot: 1 } }, 'http.prot'],
  ['host with spaces', { http: { host: 'a b' } }, 'http.host'],
  ['allowFrom not in the set', { http: { allowFrom: 'world' } }, 'http.allowFrom'],
  ['connectionsMax too large', { http: { connectionsMax: 100000 } }, 'http.connectionsMax'],
  ['headers timeout above the bound', { http: { headersTimeoutMs: 60000 } }, 'http.headersTimeoutMs'],
  ['dataDir empty', { dataDir: '' }, 'dataDir'],
  ['dataDir not a string', { dataDir: 5 }, 'dataDir'],
  ['lan not a list', { interfaces: { lan: 'eth0' } }, 'interfaces.lan'],
  ['lan entry invalid', { interfaces: { lan: ['eth0', 'bad name!'] } }, 'interfaces.lan[1]'],
  ['wan list too long', { interfaces: { wan: Array.from({ length: 100 }, (_, i) => `e${i}`) } }, 'interfaces.wan'],
  ['poll too fast', { interfaces: { pollMs: 1 } }, 'interfaces.pollMs'],
  ['log level unknown', { log: { level: 'loud' } }, 'log.level'],
  ['section not an object', { log: [] }, 'log'],
  ['top level not an object', [1, 2], '(top level)'],
  ['prototype key', JSON.parse('{"__proto__": {"x": 1}}'), '__proto__']
]

for (const [name, body, field] of BAD) {
  test(`bad config: ${name} -> exit 2 naming ${field}`, async () => {
    const d = tempDir()
    const file = join(d.path, 'c.json')
    writeFileSync(file, JSON.stringify(body))
    const r = await runCli(['agent', '--config', file, '--print-config'])
    d.remove()
    assert.is(r.code, 2)
    assert.is(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`)
    assert.ok(r.stderr.includes(`"${field}"`), r.stderr)
    assert.match(r.stderr, /got .*, expected /)
  })
}

test('not JSON, or missing file: exit 2, one line', async () => {
  const d = tempDir()
  const file = join(d.path, 'c.json')
  writeFileSync(file, '{ "http": ')
  let r = await runCli(['agent', '--config', file, '--print-config'])
  assert.is(r.code, 2)
  assert.match(r.stderr, /not valid JSON/)
  r = await runCli(['agent', '--config', join(d.path, 'missing.json'), '--print-config'])
  assert.is(r.code, 2)
  assert.match(r.stderr, /does not exist/)
  d.remove()
})

test('bad flag values name the field they set', async () => {
  const r = await runCli(['agent', '--http', '127.0.0.1:http', '--print-config'])
  assert.is(r.code, 2)
  assert.ok(r.stderr.includes('"http.port"'))
})

test('embedded defaults need no file; flags override the file', async () => {
  const d = tempDir()
  const file = join(d.path, 'c.json')
  writeFileSync(file, JSON.stringify({ name: 'attic', http: { port: 9000, host: '127.0.0.1' }, interfaces: { lan: ['br0'] } }))
  const r = await runCli(['agent', '--config', file, '--http', ':9100', '--wan', 'eth9', '--data', '/var/lib/x', '--print-config'])
  d.remove()
  assert.is(r.code, 0, r.stderr)
  const c = JSON.parse(r.stdout)
  assert.is(c.name, 'attic')
  assert.is(c.http.port, 9100, 'flag wins')
  assert.is(c.http.host, '127.0.0.1', 'file value kept where no flag')
  assert.equal(c.interfaces, { lan: ['br0'], wan: ['eth9'], pollMs: 5000 })
  assert.is(c.dataDir, '/var/lib/x')
  assert.equal(checkConfig({}), defaultConfig())
  assert.is(defaultConfig().http.port, 8787)
})

test('--http forms', () => {
  assert.equal(parseHttpFlag('0.0.0.0:8787'), { host: '0.0.0.0', port: 8787 })
  assert.equal(parseHttpFlag(':9000'), { port: 9000 })
  assert.equal(parseHttpFlag('9000'), { port: 9000 })
  assert.equal(parseHttpFlag('[::1]:9000'), { host: '::1', port: 9000 })
  assert.equal(parseHttpFlag('localhost'), { host: 'localhost' })
})

test('merge: objects merge, lists and scalars replace', () => {
  assert.equal(mergeConfig({ a: { b: 1, c: [1] } }, { a: { c: [2] } }), { a: { b: 1, c: [2] } })
  assert.equal(mergeConfig({ a: 1 }, {}), { a: 1 })
})

test('errors are coded', () => {
  try {
    checkConfig({ http: { port: -1 } })
    assert.unreachable()
  } catch (err) {
    assert.ok(CanopyError.is(err, 'CONFIG_INVALID'))
    assert.is(err.detail?.field, 'http.port')
  }
})

test.run()
