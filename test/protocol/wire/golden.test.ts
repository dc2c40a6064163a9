// The committed golden datagrams (test/fixtures/wire, only ever added to)
// still open: signature, header and body as recorded. Re-sealing the recorded
// body gives the same bytes, so an encoder change shows up here first.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { keyPairFromSeed } from '../../../src/crypto'
import { encodeBody, MESSAGE_NAMES, openEnvelope, sealEnvelope, type Body, type MessageName } from '../../../src/protocol'
import { FIXTURE_DIR, FIXTURE_KEY_SEED, type Fixture } from '../../fixtures/wire/make'

const fixtures = JSON.parse(readFileSync(join(FIXTURE_DIR, 'index.json'), 'utf8')) as Fixture[]
const pair = keyPairFromSeed(FIXTURE_KEY_SEED)

/** Bytes as hex, optional fields left out, as index.json records them. */
const normal = (v: unknown): unknown => JSON.parse(JSON.stringify(v, (_k, x: unknown) =>
  (x instanceof Uint8Array ? Buffer.from(x).toString('hex') : typeof x === 'object' && x !== null && (x as { type?: string }).type === 'Buffer' ? Buffer.from((x as { data: number[] }).data).toString('hex') : x)))

/** The recorded JSON body back into what encodeBody takes. */
function bodyFromJson (name: MessageName, b: Record<string, unknown>): Body<MessageName> {
  const out: Record<string, unknown> = { ...b }
  if (name === 'PROVIDER') out.n = Buffer.from(b.n as string, 'hex')
  return out as Body<MessageName>
}

test('every message type has a golden fixture', () => {
  for (const name of MESSAGE_NAMES) assert.ok(fixtures.some((f) => f.name === name), `no fixture for ${name}`)
})

for (const f of fixtures) {
  test(`golden ${f.file} opens as recorded`, () => {
    const bytes = readFileSync(join(FIXTURE_DIR, f.file))
    const m = openEnvelope(bytes)
    assert.is(m.name, f.name)
    assert.is(m.counter, f.counter)
    assert.ok(m.senderKey.equals(pair.publicRaw))
    assert.equal(normal(m.body), f.body)
    const again = sealEnvelope(f.name, pair.publicRaw, pair.privateKey, f.counter, encodeBody(f.name, bodyFromJson(f.name, f.body)))
    assert.ok(again.equals(bytes), 'today\'s encoder writes the same bytes')
  })
}

test.run()
