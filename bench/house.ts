// Issue 7's figures, from the household lab (test/lab/house.ts): N devices
// and a gateway in network namespaces, nginx as the origin behind a WAN link
// shaped by tc tbf, one scenario after another in one run, beside the
// baseline of the same run (every device fetching straight from nginx).
//
//   WAN bytes  = bytes nginx logged as sent ($bytes_sent: headers and bodies)
//   time       = first start to the last verified copy
//   WAN rate   = the goodput the baseline measured on this link in this run
//                (the nominal rate is shown too: TCP over a 20 Mbit/s tbf
//                carries about 19 Mbit/s of payload, so even one perfect
//                download measures ~1.05 x against the nominal rate)
//
// Then LAN serving: GET /p2p/piece from the agent beside nginx serving the
// same pieces as files, both on loopback in one namespace, driven by wrk
// (keep-alive, 8 connections, the same rotation over every piece).
//
//   CANOPY_LAB_DEVICES (5), CANOPY_LAB_MB (50), CANOPY_LAB_MBIT (20)

import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { formatPublicKey, keyPairFromSeed } from '../src/crypto'
import { sha256, signManifest } from '../src/content'
import { FIRMWARE_ENV, NODE_FLAGS, builtBundle } from '../test/helpers/bundle'
import { createNetnsLab, netnsAvailable } from '../test/helpers/netns'
import { tempDir } from '../test/helpers/tmp'
import { HouseLab, type Outcome } from '../test/lab/house'
import type { Bench, Row } from './table'

const env = (name: string, def: number): number => Number(process.env[name] ?? def)
const x = (v: number): string => `${v.toFixed(3)}×`
const mb = (b: number): string => `${(b / 1e6).toFixed(1)} MB`

function missing (): string | null {
  const why = netnsAvailable()
  if (why !== null) return why
  for (const tool of [['nginx', '-v'], ['tc', '-V'], ['curl', '--version']]) {
    try { execFileSync(tool[0]!, [tool[1]!], { stdio: 'ignore' }) } catch { return `needs ${tool[0]!}` }
  }
  return null
}

export const houseBench: Bench = {
  name: 'household lab (issue 7): one download shared',
  async run (): Promise<Row[]> {
    const why = missing()
    if (why !== null) return [{ what: `skipped: ${why}`, value: '' }]
    const devices = env('CANOPY_LAB_DEVICES', 5)
    const size = Math.round(env('CANOPY_LAB_MB', 50) * 1e6)
    const mbit = env('CANOPY_LAB_MBIT', 20)
    const lab = new HouseLab({ devices, withEvil: true, sizeBytes: size, wanMbit: mbit, verbose: true })
    const rows: Row[] = []
    try {
      await lab.setup()
      const base = await lab.baseline()
      const goodput = devices * size / base.seconds
      const ideal = size / goodput
      const nominal = size / (mbit * 1e6 / 8)
      rows.push({ what: `baseline: ${devices} devices straight from nginx, ${mb(size)} each`, value: `WAN ${x(base.wanBytes / size)} size, ${base.seconds.toFixed(1)} s`, target: `link goodput ${(goodput * 8 / 1e6).toFixed(1)} of ${mbit} Mbit/s` })
      const shared = async (o: Outcome): Promise<void> => {
        const wan = o.wanBytes / size
        const time = o.seconds / ideal
        const fromOrigin = Math.max(...o.perDevice.map((d) => d.fromOriginBytes))
        const fromPeers = o.perDevice.reduce((a, d) => a + d.fromPeersBytes, 0) / o.perDevice.length
        rows.push({ what: `${o.scenario}: WAN bytes ÷ size`, value: x(wan), baseline: x(base.wanBytes / size), ratio: x(wan / (base.wanBytes / size)), target: '≤ 1.01×', ok: wan <= 1.01 })
        rows.push({ what: `${o.scenario}: all verified ÷ (size / WAN rate)`, value: `${x(time)} (${o.seconds.toFixed(1)} s)`, baseline: `${x(base.seconds / ideal)} (${base.seconds.toFixed(1)} s)`, ratio: `${x(o.seconds / nominal)} of nominal`, target: '≤ 1.05×', ok: time <= 1.05 })
        rows.push({ what: `${o.scenario}: per device from peers / from the origin; copies right`, value: `${mb(fromPeers)} / ≤ ${mb(fromOrigin)}; ${o.good}/${o.expected}`, target: 'all right', ok: o.good === o.expected })
      }
      await shared(await lab.allAtOnce())
      await shared(await lab.staggered(Math.round(ideal * 1000 / (2 * devices))))
      await shared(await lab.proxyClients())
      const d = await lab.corruptPeer()
      rows.push({ what: `${d.scenario}: corrupt copies; devices that isolated it`, value: `${d.expected - d.good} of ${d.expected}; ${d.isolatedBy} of ${d.expected}`, target: '0 corrupt', ok: d.good === d.expected })
      rows.push({ what: `${d.scenario}: WAN bytes ÷ size; time`, value: `${x(d.wanBytes / size)}; ${x(d.seconds / ideal)}` })
      // The last device is the corrupting peer: it runs from source under esbuild-register without the firmware's node flags, so its RSS says nothing about the agent's.
      const rss = await Promise.all([lab.ns.gw, ...lab.ns.devices].map(async (n) => (await lab.status(n)).memory.rssBytes as number))
      const agents = rss.slice(0, 1 + devices)
      rows.push({ what: 'agents\' RSS after (a)-(d) (gateway; largest device), --max-old-space-size=48', value: `${mb(agents[0]!)}; ${mb(Math.max(...agents.slice(1)))} (corrupting peer, from source: ${mb(rss[1 + devices]!)})`, target: '≤ 64 MB', ok: Math.max(...agents) <= 64 * 1024 * 1024 })
      const e = await lab.providerDies(Math.round(ideal * 400))
      rows.push({ what: `${e.scenario} (${e.note}): devices finished, copies right`, value: `${e.good} of ${e.expected}`, target: 'all finish', ok: e.good === e.expected })
      rows.push({ what: `${e.scenario}: WAN bytes ÷ size; time`, value: `${x(e.wanBytes / size)}; ${x(e.seconds / ideal)}` })
    } finally {
      lab.cleanup()
    }
    return rows
  }
}

const KEY = keyPairFromSeed(randomBytes(32))
/** Fits the agent's in-memory hot set (HOT_PIECES_BYTES_MAX, 8 MiB). */
const HOT_PIECES = 6

/** wrk's bytes per second over `seconds` on URLs rotating over `paths`. */
async function wrk (ns: string, base: string, paths: string[], dir: string, seconds: number): Promise<{ bps: number, non2xx: number }> {
  const script = join(dir, `rotate-${randomBytes(3).toString('hex')}.lua`)
  writeFileSync(script, `local paths = {${paths.map((p) => JSON.stringify(p)).join(',')}}\nlocal i = 0\nrequest = function()\n  i = i % #paths + 1\n  return wrk.format("GET", paths[i])\nend\n`)
  const out = execFileSync('ip', ['netns', 'exec', ns, 'wrk', '-t2', '-c8', `-d${seconds}s`, '-s', script, base], { timeout: (seconds + 30) * 1000 }).toString()
  const m = /Transfer\/sec:\s+([\d.]+)([KMG]?B)/.exec(out)
  const unit = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[m?.[2] ?? 'B'] ?? 1
  return { bps: Number(m?.[1] ?? 0) * unit, non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) }
}

export const servingBench: Bench = {
  name: 'LAN serving (issue 7): GET /p2p/piece beside nginx, same bytes, loopback',
  async run (): Promise<Row[]> {
    const why = missing() ?? (() => { try { execFileSync('wrk', ['-v'], { stdio: 'ignore' }); return null } catch (e: any) { return e.status === 1 ? null : 'needs wrk' } })()
    if (why !== null) return [{ what: `skipped: ${why}`, value: '' }]
    const lab = createNetnsLab(1)
    const dir = tempDir('canopy-serve-')
    const host = lab.hosts[0]!
    try {
      const pieceSize = 1024 * 1024
      const count = 32 // four times the agent's in-memory hot set: most reads come from flash
      const file = randomBytes(pieceSize * count)
      const pieces = [...Array(count).keys()].map((i) => sha256(file.subarray(i * pieceSize, (i + 1) * pieceSize)))
      const www = join(dir.path, 'www')
      mkdirSync(join(www, 'pieces'), { recursive: true })
      mkdirSync(join(dir.path, 'tmp'))
      pieces.forEach((h, i) => { writeFileSync(join(www, 'pieces', h), file.subarray(i * pieceSize, (i + 1) * pieceSize)) })
      writeFileSync(join(www, 'f.bin'), file)
      writeFileSync(join(www, 'f.canopy.json'), signManifest({ name: 'f.bin', size: file.length, pieceSize, pieces, urls: ['http://127.0.0.1:8080/f.bin'] }, KEY).bytes)
      writeFileSync(join(dir.path, 'nginx.conf'), `daemon off; master_process off; user root; worker_processes 1; pid ${dir.path}/nginx.pid; error_log ${dir.path}/error.log;
events { worker_connections 256; }
http { access_log off; sendfile on; keepalive_requests 100000; client_body_temp_path ${dir.path}/tmp; proxy_temp_path ${dir.path}/tmp; fastcgi_temp_path ${dir.path}/tmp; uwsgi_temp_path ${dir.path}/tmp; scgi_temp_path ${dir.path}/tmp;
  server { listen 127.0.0.1:8080; root ${www}; } }
`)
      lab.spawn(host, 'nginx', ['-c', join(dir.path, 'nginx.conf'), '-p', dir.path])
      const data = join(dir.path, 'agent')
      mkdirSync(data)
      writeFileSync(join(data, 'config.json'), JSON.stringify({ trustedPublishers: [formatPublicKey(KEY.publicRaw)], http: { host: '127.0.0.1', port: 8787 }, cache: { blockBytes: 2 * 1024 * 1024, blockCount: 48, bytesMax: 72 * 1024 * 1024 } }))
      const agent = lab.spawn(host, process.execPath, [...NODE_FLAGS, await builtBundle(), 'agent', '--config', join(data, 'config.json'), '--data', data], { env: { PATH: process.env.PATH, ...FIRMWARE_ENV } })
      agent.stdout!.resume()
      agent.stderr!.resume()
      const end = Date.now() + 20_000
      for (;;) {
        try {
          await lab.exec(host, 'curl', ['-sf', '-o', '/dev/null', 'http://127.0.0.1:8787/api/content?manifest=http%3A%2F%2F127.0.0.1%3A8080%2Ff.canopy.json'], 20_000)
          break
        } catch (err) { if (Date.now() > end) throw err }
        await new Promise((resolve) => setTimeout(resolve, 300))
      }
      const seconds = 5
      const rows: Row[] = []
      // Hot: the household pattern (a piece that just landed, asked for by the other devices); cold: every read from flash, verified.
      for (const [what, set, target] of [['hot pieces (just stored, asked by the other devices)', pieces.slice(0, HOT_PIECES), true], [`cold pieces: ${count} rotating, every read from flash and re-hashed`, pieces, false]] as const) {
        const n = await wrk(host.ns, 'http://127.0.0.1:8080', set.map((h) => `/pieces/${h}`), dir.path, seconds)
        const c = await wrk(host.ns, 'http://127.0.0.1:8787', set.map((h) => `/p2p/piece/${h}`), dir.path, seconds)
        const ratio = c.bps / n.bps
        rows.push({
          what: `GET /p2p/piece, ${what}, 1 MiB, 8 connections`,
          value: `${(c.bps / 1e6).toFixed(0)} MB/s${c.non2xx > 0 ? ` (${c.non2xx} busy answers)` : ''}`,
          baseline: `nginx ${(n.bps / 1e6).toFixed(0)} MB/s`,
          ratio: `${ratio.toFixed(2)}×`,
          ...(target ? { target: '≥ 0.7× nginx', ok: ratio >= 0.7 } : { target: `${(c.bps * 8 / 1e9).toFixed(1)} Gbit/s vs a 1 Gbit/s LAN` })
        })
      }
      return rows
    } finally {
      lab.cleanup()
      dir.remove()
    }
  }
}
