// The hardware abstraction layer: the only door to the device. Everything
// else receives a Hal, so it runs unchanged on the Linux twins below or on the
// simulated ones (createSimHal) in tests and simulations.

import { join } from 'node:path'
import { createRealClock, type Clock } from './clock'
import { SimClock } from './clock-sim'
import { createLinuxFiles, type Files } from './files'
import { SimFiles } from './files-sim'
import { FileFlash } from './flash-file'
import { SimFlash, type SimFlashOptions } from './flash-sim'
import type { Flash, FlashGeometry } from './flash'
import { LinuxNics } from './nic-linux'
import { SimNics } from './nic-sim'
import type { Nics, NicRoleConfig, RawNic } from './nic'
import { createCryptoRandom, createSeededRandom, type Random } from './random'
import type { Net } from './net'
import { createLinuxNet } from './net-linux'
import { SimNetwork, type SimHost } from './net-sim'

export interface Hal {
  readonly clock: Clock
  readonly random: Random
  readonly files: Files
  readonly nics: Nics
  readonly net: Net
  /** The directory that holds this node's state. */
  readonly dataDir: string
  /** Open (creating if needed) a named flash area of the given geometry. */
  openFlash (name: string, geometry: FlashGeometry): Promise<Flash>
  close (): Promise<void>
}

export interface LinuxHalOptions {
  dataDir: string
  roles: NicRoleConfig
  nicPollMs?: number
}

export async function createLinuxHal (options: LinuxHalOptions): Promise<Hal> {
  const clock = createRealClock()
  const files = createLinuxFiles()
  await files.mkdir(options.dataDir)
  const nics = await LinuxNics.open(clock, options.roles, options.nicPollMs)
  return {
    clock,
    random: createCryptoRandom(),
    files,
    nics,
    net: createLinuxNet(),
    dataDir: options.dataDir,
    openFlash: (name, geometry) => FileFlash.open(join(options.dataDir, name), geometry),
    close: async () => { nics.close() }
  }
}

export interface SimHalOptions {
  seed: number
  /** This node's host on a simulated network; its interfaces become the NICs. */
  host?: SimHost
  /** Interfaces when no host is given (a private one-host network is made). */
  nics?: RawNic[]
  roles?: NicRoleConfig
  clock?: SimClock
  files?: SimFiles
  flashOptions?: SimFlashOptions
  dataDir?: string
}

export interface SimHal extends Hal {
  readonly clock: SimClock
  readonly files: SimFiles
  readonly nics: SimNics
  readonly net: SimHost
  /** Flash areas opened so far, by name (they survive an agent restart on the same SimHal). */
  readonly flashes: Map<string, SimFlash>
}

export function createSimHal (options: SimHalOptions): SimHal {
  const flashes = new Map<string, SimFlash>()
  const clock = options.host?.network.clock ?? options.clock ?? new SimClock()
  const host = options.host ?? privateHost(clock, options.seed, options.nics ?? [])
  return {
    clock,
    random: createSeededRandom(options.seed),
    files: options.files ?? new SimFiles(),
    nics: new SimNics(options.nics ?? host.rawNics(), options.roles),
    net: host,
    dataDir: options.dataDir ?? '/sim',
    flashes,
    async openFlash (name, geometry) {
      const old = flashes.get(name)
      const flash = old === undefined ? new SimFlash(geometry, options.flashOptions) : old.reboot()
      flashes.set(name, flash)
      return flash
    },
    close: async () => {}
  }
}

/** A one-host network for a SimHal made without one. */
function privateHost (clock: SimClock, seed: number, nics: RawNic[]): SimHost {
  const network = new SimNetwork(clock, { seed })
  const ifaces = nics.flatMap((n) => n.addresses.map((a) => ({ nic: n.name, address: a.address, prefixLength: a.prefixLength })))
  return network.addHost('sim', ifaces.length > 0 ? ifaces : [{ nic: 'eth0', address: '192.168.1.2', prefixLength: 24 }])
}

export type { Clock, Timer } from './clock'
export { TimerGroup, createRealClock } from './clock'
export { SimClock } from './clock-sim'
export type { Files } from './files'
export { createLinuxFiles } from './files'
export { SimFiles } from './files-sim'
export type { Flash, FlashGeometry } from './flash'
export { ERASED_BYTE, checkGeometry } from './flash'
export { FileFlash } from './flash-file'
export { SimFlash } from './flash-sim'
export type { SimFlashOptions, UnsyncedPolicy, BadBlockKind, FlashOp } from './flash-sim'
export type { Nic, NicAddress, NicEvent, NicRole, NicRoleConfig, Nics, RawNic } from './nic'
export { NicTable, decideRole, lanNicFor } from './nic'
export { LinuxNics, readLinuxInterfaces } from './nic-linux'
export { SimNics, simNic } from './nic-sim'
export type { IpAddress, AddressScope } from './ip'
export { parseIp, formatIp, inPrefix, addressScope, isHomeScope } from './ip'
export type { Net, UdpSocket, UdpOptions, Datagram, StreamSocket, TcpServer } from './net'
export { createLinuxNet } from './net-linux'
export { SimNetwork, SimHost, type LinkConditions, type SimInterface, type SimNetworkStats } from './net-sim'
export type { Random } from './random'
export { createCryptoRandom, createSeededRandom } from './random'
export { commandScanner, type Scanner, type ScanResult } from './scanner'
export { collectGarbage } from './memory'
