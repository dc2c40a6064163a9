// Groups between agents in this process on loopback (real sockets): a
// member and a non-member of the same LAN. The non-member sees no group
// plaintext, and the records it injects are dropped; a revoked member's
// later records are refused everywhere.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { buildAgent, type Agent } from '../../src/agent'
import { checkConfig } from '../../src/config'
import type { GroupsService } from '../../src/groups'
import { signRecord } from '../../src/groups/record'
import { createLinuxHal } from '../../src/hal'
import { silentLogger } from '../../src/log'
import type { Link } from '../../src/protocol/link'
import { tempDir } from '../helpers/tmp'
import { waitFor } from '../helpers/http'

async function agent (dirs: Array<{ remove (): void }>): Promise<Agent> {
  const dir = tempDir('canopy-groups-')
  dirs.push(dir)
  const config = checkConfig({ dataDir: dir.path, http: { host: '127.0.0.1', port: 0 }, groups: { syncIntervalMs: 300, blockCount: 16 } })
  const a = await buildAgent(config, await createLinuxHal({ dataDir: dir.path, roles: config.interfaces }), silentLogger)
  await a.start()
  return a
}
const groupsOf = (a: Agent): GroupsService => a.services.find((s) => s.name === 'groups') as GroupsService

test('a non-member sees no plaintext and its injected records are dropped', async () => {
  const dirs: Array<{ remove (): void }> = []
  const agents: Agent[] = []
  try {
    for (let i = 0; i < 3; i++) agents.push(await agent(dirs))
    const [a, b, c] = agents.map(groupsOf) as [GroupsService, GroupsService, GroupsService]
    const g = await a.create('private')
    await b.join(a.invite(g, b.me, 2, 60_000))
    // c links to a (the LAN group) but is not in g
    await a.o.links.connect('127.0.0.1', c.o.links.listenPort, c.me)
    // what goes onto every link of a, and what c can open of what it receives
    const wire: Buffer[] = []
    const seenByC: string[] = []
    for (const l of a.o.links.list()) {
      const send = l.send.bind(l)
      l.send = ((ch, p, o) => { wire.push(Buffer.from(p)); return send(ch, p, o) }) as Link['send']
    }
    const receive = c.sync.receive.bind(c.sync)
    c.sync.receive = async (peer, m) => { seenByC.push(m.toString('latin1')); await receive(peer, m) }
    const secret = 'the-secret-line-' + Date.now()
    await a.write(g, { type: 'chat', payload: Buffer.from(secret) })
    await a.write('lan', { type: 'presence', payload: Buffer.from('lan-hello') })
    await waitFor(async () => b.store!.list(g, { type: 'chat' }).length === 1 && c.store!.list('lan', { type: 'presence' }).length === 1, 5_000, 'records delivered')
    assert.ok(wire.length > 0)
    assert.not.ok(wire.some((w) => w.includes(secret)), 'only sealed bytes on the links')
    assert.not.ok(seenByC.some((s) => s.includes(secret)), 'c received nothing of g')
    assert.ok(seenByC.some((s) => s.includes('lan-hello')), 'c does receive the LAN group')
    // c injects a record of its own and a forged summary into g
    const now = Date.now()
    const forged = signRecord({ group: g, id: 'ff'.repeat(16), type: 'chat', version: 9, created: now, expires: 0, attributes: {}, deleted: false, payload: Buffer.from('intruder') }, c.o.identity.publicKey, c.o.identity.privateKey)
    const before = { ...a.sync.counters }
    c.sync.send(a.me, g, { m: 'r', r: [forged.bytes] })
    c.sync.summarize(g, a.me)
    await waitFor(async () => a.sync.counters.recordsRefused > before.recordsRefused && a.sync.counters.messagesRefused > before.messagesRefused, 3_000, 'injections refused')
    assert.is(a.store!.get(g, forged.id), undefined)
    await new Promise((resolve) => setTimeout(resolve, 400))
    assert.is(b.store!.get(g, forged.id), undefined)
    // revoked: b's records from now on are refused by a
    await a.revoke(g, b.me)
    assert.not.ok(a.peers(g).includes(b.me), 'a revoked member gets no more traffic')
    await new Promise((resolve) => setTimeout(resolve, 5))
    const refused = a.sync.counters.recordsRefused
    await b.write(g, { type: 'chat', payload: Buffer.from('after revocation') })
    await waitFor(async () => a.sync.counters.recordsRefused > refused, 3_000, 'the revoked member\'s record refused')
    assert.is(a.store!.list(g, { type: 'chat' }).filter((m) => m.author === b.me).length, 0)
  } finally {
    for (const x of agents) await x.stop()
    for (const d of dirs) d.remove()
  }
})

test.run()
