// N members of one group on a simulated message network (test and bench):
// a sparse random graph, per-message latency and loss, partitions. Each
// member is a RecordStore and a GroupSync, on one SimClock.

import { randomBytes } from 'node:crypto'
import { createSync, type GroupSync } from '../../src/groups/sync'
import type { GroupRecord } from '../../src/groups/record'
import type { RecordStore } from '../../src/groups/store'
import { createSeededRandom, SimClock, type Random } from '../../src/hal'
import type { Identity } from '../../src/identity'
import { fixtureGroup, memStore, quietLog, sign } from './groups'

export interface SimOptions { n: number, degree: number, lossRate: number, seed: number, latencyMs?: [number, number], syncIntervalMs?: number }

export class GroupSim {
  readonly clock = new SimClock()
  readonly random: Random
  readonly group: string
  readonly ids: Identity[]
  readonly stores: RecordStore[] = []
  readonly syncs: GroupSync[] = []
  readonly edges: Array<Set<number>>
  /** Partition: members with different sides do not hear each other. */
  side: number[] = []
  messages = 0
  bytes = 0
  /** Record hash -> member -> simulated ms it arrived. */
  readonly arrivals = new Map<string, Map<number, number>>()
  private constructor (readonly o: SimOptions) {
    this.random = createSeededRandom(o.seed)
    const f = fixtureGroup(o.n, o.seed, this.clock)
    this.group = f.group
    this.ids = f.ids
    this.edges = Array.from({ length: o.n }, () => new Set<number>())
    // a ring (connected) plus random chords, degree about `degree`
    for (let i = 0; i < o.n; i++) {
      this.link(i, (i + 1) % o.n)
      for (let k = 2; k < o.degree / 2 + 1 && o.n > 3; k++) this.link(i, this.random.int(o.n))
    }
    this.side = new Array<number>(o.n).fill(0)
    this.members = f.members
  }

  private members: GroupRecord[]

  static async create (o: SimOptions): Promise<GroupSim> {
    const s = new GroupSim(o)
    const [lo, hi] = o.latencyMs ?? [2, 20]
    for (let i = 0; i < o.n; i++) {
      const store = await memStore(s.clock, {
        onChange: (m, change) => {
          if (change === 'removed') return
          let at = s.arrivals.get(m.hash)
          if (at === undefined) s.arrivals.set(m.hash, at = new Map())
          at.set(i, s.clock.nowMs())
        }
      })
      store.ensure(s.group)
      for (const m of s.members) await store.apply(m)
      s.stores.push(store)
      s.syncs.push(createSync({
        store,
        random: s.random,
        log: quietLog,
        peers: () => [...s.edges[i]!].map(String),
        send: (peer, msg) => {
          const j = Number(peer)
          s.messages++
          s.bytes += msg.length + 5 + 4 + 16 // a link frame header, the frame count and the AEAD tag
          if (s.side[i] !== s.side[j] || s.random.float() < o.lossRate) return true
          s.clock.setTimeout(() => { void s.syncs[j]!.receive(String(i), msg) }, lo + s.random.int(hi - lo + 1))
          return true
        }
      }))
      s.clock.setInterval(() => { s.syncs[i]!.tick(s.group) }, o.syncIntervalMs ?? 1_000)
    }
    await s.clock.advance(o.syncIntervalMs ?? 1_000) // the member records are already everywhere
    s.messages = s.bytes = 0
    return s
  }

  private link (a: number, b: number): void {
    if (a === b) return
    this.edges[a]!.add(b)
    this.edges[b]!.add(a)
  }

  /** Member i writes a record and floods it. */
  async write (i: number, payloadBytes = 64, id = randomBytes(16).toString('hex')): Promise<GroupRecord> {
    const old = this.stores[i]!.get(this.group, id)
    const r = sign(this.ids[i]!, { group: this.group, id, version: (old?.version ?? 0) + 1, created: this.clock.wallMs(), payload: Buffer.alloc(payloadBytes, i) }, this.clock)
    await this.stores[i]!.apply(r)
    this.syncs[i]!.flood(r)
    return r
  }

  digest (i: number): string { return JSON.stringify(this.stores[i]!.summary(this.group)) }
  converged (): boolean { return this.stores.every((_, i) => this.digest(i) === this.digest(0)) }

  /** Advance in steps until every store has the same digest; the simulated ms it took, or -1 past maxMs. */
  async untilConverged (maxMs: number, stepMs = 50): Promise<number> {
    const t0 = this.clock.nowMs()
    while (this.clock.nowMs() - t0 <= maxMs) {
      if (this.converged()) return this.clock.nowMs() - t0
      await this.clock.advance(stepMs)
    }
    return -1
  }
}
