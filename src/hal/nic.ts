// Network interfaces and their roles. A NicTable turns raw snapshots (from
// Linux in nic-linux.ts, from a test in nic-sim.ts) into roles and
// add/remove/change events, so both twins share this logic.

import { NIC_ADDRESS_COUNT_MAX, NIC_COUNT_MAX } from '../limits'
import { addressScope, inPrefix, isHomeScope, parseIp, type AddressScope, type IpAddress } from './ip'

export type NicRole = 'lan' | 'wan' | 'loopback' | 'none'

export interface NicAddress {
  family: 4 | 6
  address: string
  prefixLength: number
  scope: AddressScope
}

/** What the system reports for an interface, before roles are decided. */
export interface RawNic {
  name: string
  up: boolean
  multicast: boolean
  loopback: boolean
  speedMbps: number | null
  addresses: Array<{ family: 4 | 6, address: string, prefixLength: number }>
}

export interface Nic extends Omit<RawNic, 'addresses'> {
  addresses: NicAddress[]
  role: NicRole
}

export interface NicRoleConfig {
  /** Interfaces named LAN by config or --lan; when non-empty, no other interface is LAN. */
  lan: readonly string[]
  /** Interfaces named WAN by config or --wan. */
  wan: readonly string[]
}

export interface NicEvent {
  type: 'add' | 'remove' | 'change'
  nic: Nic
  previous?: Nic
}

export interface Nics {
  list (): readonly Nic[]
  get (name: string): Nic | undefined
  /** Subscribe to changes; returns the unsubscribe function. */
  on (listener: (event: NicEvent) => void): () => void
  /** Re-read interfaces now (the Linux twin also polls). */
  refresh (): Promise<void>
  close (): void
}

/**
 * Role rule. Names given in config win. Otherwise an interface is WAN when it
 * has a public or CGNAT IPv4 address, LAN when its IPv4 addresses are all
 * private or link-local. IPv6 global addresses do not make an interface WAN
 * when it has private IPv4 (homes with prefix delegation put GUAs on the LAN);
 * an IPv6-only interface is LAN only if all its addresses are ULA/link-local.
 */
export function decideRole (nic: Omit<Nic, 'role'>, config: NicRoleConfig): NicRole {
  if (nic.loopback) return 'loopback'
  if (config.wan.includes(nic.name)) return 'wan'
  if (config.lan.includes(nic.name)) return 'lan'
  if (nic.addresses.length === 0) return 'none'
  const v4 = nic.addresses.filter((a) => a.family === 4)
  const judged = v4.length > 0 ? v4 : nic.addresses
  const outside = judged.some((a) => a.scope === 'public' || a.scope === 'cgnat')
  if (outside) return 'wan'
  const home = judged.every((a) => isHomeScope(a.scope))
  if (!home) return 'none'
  return config.lan.length > 0 ? 'none' : 'lan'
}

function normalize (raw: RawNic, config: NicRoleConfig): Nic {
  const addresses: NicAddress[] = []
  for (const a of raw.addresses) {
    if (addresses.length >= NIC_ADDRESS_COUNT_MAX) break
    const ip = parseIp(a.address)
    if (ip === null) continue
    const max = ip.family === 4 ? 32 : 128
    const prefixLength = Number.isInteger(a.prefixLength) ? Math.min(max, Math.max(0, a.prefixLength)) : max
    addresses.push({ family: ip.family, address: a.address, prefixLength, scope: addressScope(ip) })
  }
  const base = { ...raw, addresses }
  return { ...base, role: decideRole(base, config) }
}

const same = (a: Nic, b: Nic): boolean => JSON.stringify(a) === JSON.stringify(b)

/** Interfaces by name, turned into events as snapshots replace each other (shared by both twins). */
export interface NicTable extends Pick<Nics, 'list' | 'get' | 'on'> {
  /** Replace the table with a new snapshot and emit the differences. */
  update (snapshot: readonly RawNic[]): void
  clear (): void
}

export function NicTable (config: NicRoleConfig): NicTable {
  let nics = new Map<string, Nic>()
  const listeners = new Set<(e: NicEvent) => void>()
  return {
    list: () => [...nics.values()],
    get: (name) => nics.get(name),
    on (listener) {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    },
    update (snapshot) {
      const next = new Map<string, Nic>()
      for (const raw of snapshot) {
        if (next.size >= NIC_COUNT_MAX) break
        next.set(raw.name, normalize(raw, config))
      }
      const events: NicEvent[] = []
      for (const [name, old] of nics) if (!next.has(name)) events.push({ type: 'remove', nic: old })
      for (const [name, nic] of next) {
        const old = nics.get(name)
        if (old === undefined) events.push({ type: 'add', nic })
        else if (!same(old, nic)) events.push({ type: 'change', nic, previous: old })
      }
      nics = next
      for (const e of events) for (const l of [...listeners]) l(e)
    },
    clear: () => { listeners.clear() }
  }
}

/** The LAN interface (up, role lan) whose prefixes contain addr, if any. */
export function lanNicFor (nics: readonly Nic[], addr: string | IpAddress): Nic | undefined {
  const ip = typeof addr === 'string' ? parseIp(addr) : addr
  if (ip === null) return undefined
  for (const nic of nics) {
    if (nic.role !== 'lan' || !nic.up) continue
    for (const a of nic.addresses) {
      const p = parseIp(a.address)
      if (p !== null && inPrefix(ip, p, a.prefixLength)) return nic
    }
  }
  return undefined
}
