// Groups in memory for tests: records in a Map instead of flash, identities
// from seeds, a group whose members all hold membership certificates.

import { createSeededRandom, SimClock, type Clock } from '../../src/hal'
import { createKeyPair, identityFromKeyPair, type Identity } from '../../src/identity'
import { issue, newGroup, ROLES } from '../../src/groups/cert'
import { signRecord, type GroupRecord, type RecordDraft } from '../../src/groups/record'
import { memberDraft, openStore, type Blobs, type RecordStore, type StoreOptions } from '../../src/groups/store'
import { createLogger } from '../../src/log'

export const quietLog = createLogger({ level: 'error', nowMs: () => 0, wallMs: () => 0, write: () => {} })

export function memBlobs (): Blobs & { map: Map<string, Buffer> } {
  const map = new Map<string, Buffer>()
  return {
    map,
    put: async (h, b) => { map.set(h, Buffer.from(b)) },
    get: async (h) => map.get(h),
    delete: async (h) => map.delete(h),
    hashes: () => [...map.keys()]
  }
}

export const identity = (seed: number): Identity => identityFromKeyPair(createKeyPair(createSeededRandom(seed)))

export async function memStore (clock: Clock, o: Partial<StoreOptions> = {}, blobs = memBlobs()): Promise<RecordStore> {
  return await openStore(blobs, { clock, recordsMax: 100_000, bytesMax: 1 << 30, perMinute: 1_000_000, log: quietLog, ...o }, () => true)
}

/** A group of n members (member 0 the owner; 1 an admin), their chains and member records. */
export function fixtureGroup (n: number, seed = 1, clock: Clock = new SimClock()): { group: string, ids: Identity[], chains: Buffer[][], members: GroupRecord[] } {
  const ids = Array.from({ length: n }, (_, i) => identity(seed * 1000 + i))
  const { group, chain } = newGroup('test', ids[0]!, createSeededRandom(seed).bytes(32))
  const chains = ids.map((id, i) => (i === 0 ? chain : issue(chain, ids[0]!, { g: group, s: id.nodeId, r: i === 1 ? ROLES.admin | ROLES.member : ROLES.member, x: 0 })))
  const members = ids.map((id, i) => signRecord(memberDraft(chains[i]!, 1, clock.wallMs()), id.publicKey, id.privateKey))
  return { group, ids, chains, members }
}

export const sign = (id: Identity, d: Partial<RecordDraft> & { group: string, id: string }, clock: Clock): GroupRecord =>
  signRecord({ type: 'chat', version: 1, created: clock.wallMs(), expires: 0, attributes: {}, deleted: false, payload: Buffer.alloc(0), ...d }, id.publicKey, id.privateKey)
