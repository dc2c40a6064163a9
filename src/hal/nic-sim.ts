// Simulated interfaces: a test sets the snapshot and events follow, exactly
// as the Linux twin's poll would produce them.

import { NicTable, type NicEvent, type NicRoleConfig, type Nics, type Nic, type RawNic } from './nic'

export class SimNics implements Nics {
  readonly #table: NicTable
  #snapshot: RawNic[]

  constructor (initial: RawNic[], config: NicRoleConfig = { lan: [], wan: [] }) {
    this.#table = NicTable(config)
    this.#snapshot = initial
    this.#table.update(initial)
  }

  list (): readonly Nic[] { return this.#table.list() }
  get (name: string): Nic | undefined { return this.#table.get(name) }
  on (listener: (e: NicEvent) => void): () => void { return this.#table.on(listener) }
  async refresh (): Promise<void> { this.#table.update(this.#snapshot) }
  close (): void { this.#table.clear() }

  /** Test hook: the interfaces now look like this. */
  set (snapshot: RawNic[]): void {
    this.#snapshot = snapshot
    this.#table.update(snapshot)
  }
}

/** A convenient raw interface for tests and simulations. */
export function simNic (name: string, addresses: Array<[string, number]>, extra: Partial<RawNic> = {}): RawNic {
  return {
    name,
    up: true,
    multicast: true,
    loopback: false,
    speedMbps: 1000,
    addresses: addresses.map(([address, prefixLength]) => ({ family: address.includes(':') ? 6 : 4, address, prefixLength })),
    ...extra
  }
}
