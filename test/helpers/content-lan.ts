// Whole agents in this process on loopback (127.0.N.x), real HTTP and UDP,
// the real clock, flash and files in memory: node 0 is the gateway (it has a
// WAN interface, so it is elected provider), the others are devices. Peers
// are listed statically once every port is known.

import type { AddressInfo } from 'node:net'
import { buildAgent, type Agent } from '../../src/agent'
import { checkConfig, mergeConfig } from '../../src/config'
import { SimFiles, SimFlash, SimNics, createCryptoRandom, createLinuxNet, createRealClock, simNic, type Hal } from '../../src/hal'
import { silentLogger } from '../../src/log'
import { StaticPeerDirectory } from '../../src/protocol'
import type { ContentService, Proxy } from '../../src/content'
import { waitFor } from './http'
import { tempDir } from './tmp'

export interface ContentNode { agent: Agent, url: string, address: string, content: ContentService, proxy: Proxy, peers: StaticPeerDirectory }

let subnet = 10 + (process.pid % 200)

export async function buildContentLan (o: { nodes: number, trusted?: string[], config?: (i: number) => Record<string, unknown> }): Promise<{ nodes: ContentNode[], stop (): Promise<void> }> {
  subnet = subnet % 250 + 1
  const nodes: ContentNode[] = []
  const dir = tempDir('canopy-content-') // real files only for the scanner hook's temporary copy
  const stop = async (): Promise<void> => {
    for (const n of nodes) await n.agent.stop(1_000)
    dir.remove()
  }
  try {
    for (let i = 0; i < o.nodes; i++) {
      const address = `127.0.${subnet}.${i + 1}`
      const hal: Hal = {
        clock: createRealClock(), random: createCryptoRandom(), files: new SimFiles(), net: createLinuxNet(), dataDir: dir.path,
        nics: new SimNics(i === 0 ? [simNic('wan0', [['203.0.113.1', 24]])] : []),
        openFlash: async (_name, g) => new SimFlash(g),
        close: async () => {}
      }
      const config = checkConfig(mergeConfig({
        http: { host: address, port: 0 },
        protocol: { udpPort: 0, udpHost: address },
        discovery: { enabled: false },
        trustedPublishers: o.trusted ?? [],
        cache: { blockBytes: 256 * 1024, blockCount: 48, bytesMax: 8 * 1024 * 1024 }
      }, o.config?.(i) ?? {}))
      const peers = new StaticPeerDirectory()
      const agent = await buildAgent(config, hal, silentLogger, { peers })
      await agent.start().catch(async (err: unknown) => { await agent.stop(500); throw err })
      const find = <T>(name: string): T => agent.services.find((s) => s.name === name) as T
      nodes.push({ agent, url: agent.url.replace(/\/$/, ''), address, content: find('transfers'), proxy: find('proxy'), peers })
    }
    for (const a of nodes) {
      for (const b of nodes) {
        if (a === b) continue
        const s = b.agent.status() as { wire: { port: number } }
        a.peers.set({
          nodeId: b.agent.identity.nodeId, publicKey: b.agent.identity.publicKey, address: b.address, httpPort: (b.agent.http.address() as AddressInfo).port,
          udpPort: s.wire.port, capabilities: [], name: '', version: '', lastSeenMs: 0, expiresMs: Infinity
        })
      }
    }
    const gw = nodes[0]!.agent.identity.nodeId
    await waitFor(async () => nodes.every((n) => (n.agent.status() as { provider: { provider: { nodeId: string } | null } }).provider.provider?.nodeId === gw), 8_000, 'the gateway elected provider')
    return { nodes, stop }
  } catch (err) {
    await stop()
    throw err
  }
}
