// Linux interfaces: addresses from os.networkInterfaces(), link state, flags
// and speed from /sys/class/net. Polled (no netlink in Node); changes become
// events through the shared NicTable.

import { networkInterfaces } from 'node:os'
import { promises as fsp } from 'node:fs'
import { NIC_COUNT_MAX, NIC_POLL_MS, NIC_POLL_MS_MIN } from '../limits'
import type { Clock } from './clock'
import { NicTable, type NicRoleConfig, type Nics, type RawNic } from './nic'

const IFF_UP = 0x1
const IFF_LOOPBACK = 0x8
const IFF_MULTICAST = 0x1000
const SYS_NET = '/sys/class/net'

async function sysRead (name: string, file: string): Promise<string | null> {
  try {
    return (await fsp.readFile(`${SYS_NET}/${name}/${file}`, 'utf8')).trim()
  } catch {
    return null // absent, or EINVAL (speed of a virtual link)
  }
}

/** One snapshot of the system's interfaces. */
export async function readLinuxInterfaces (): Promise<RawNic[]> {
  const byName = networkInterfaces()
  let names: string[]
  try {
    names = await fsp.readdir(SYS_NET)
  } catch {
    names = [] // not Linux, or /sys not mounted: fall back to what os reports
  }
  for (const n of Object.keys(byName)) if (!names.includes(n)) names.push(n)
  const out: RawNic[] = []
  for (const name of names.slice(0, NIC_COUNT_MAX)) {
    const addrs = byName[name] ?? []
    const flagsText = await sysRead(name, 'flags')
    const flags = flagsText === null ? null : parseInt(flagsText, 16)
    const oper = await sysRead(name, 'operstate')
    const speed = Number(await sysRead(name, 'speed'))
    const loopback = flags !== null ? (flags & IFF_LOOPBACK) !== 0 : addrs.some((a) => a.internal)
    const up = flags !== null ? (flags & IFF_UP) !== 0 && oper !== 'down' && oper !== 'lowerlayerdown' : addrs.length > 0
    out.push({
      name,
      up,
      loopback,
      multicast: flags !== null ? (flags & IFF_MULTICAST) !== 0 : !loopback,
      speedMbps: Number.isFinite(speed) && speed > 0 ? speed : null,
      addresses: addrs.map((a) => ({
        // Node 18.0–18.3 reported family as a number.
        family: (a.family === 'IPv6' || (a.family as unknown) === 6) ? 6 as const : 4 as const,
        address: a.address,
        prefixLength: Number((a.cidr ?? '/').split('/')[1])
      }))
    })
  }
  return out
}

export const LinuxNics = {
  async open (clock: Clock, config: NicRoleConfig, pollMs = NIC_POLL_MS): Promise<Nics> {
    const table = NicTable(config)
    let polling: Promise<void> | null = null
    // One poll at a time: a slow /sys must not stack reads.
    const refresh = (): Promise<void> => (polling ??= readLinuxInterfaces()
      .then((snapshot) => { table.update(snapshot) })
      .finally(() => { polling = null }))
    await refresh()
    const timer = clock.setInterval(() => { refresh().catch(() => {}) }, Math.max(NIC_POLL_MS_MIN, pollMs))
    return {
      list: table.list,
      get: table.get,
      on: table.on,
      refresh,
      close () {
        timer.cancel()
        table.clear()
      }
    }
  }
}
