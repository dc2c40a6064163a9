// Real processes and a real encoder (issue 5): ffmpeg makes a live test
// stream (testsrc2 + sine, H.264/AAC in MPEG-TS), `canopy stream push`
// feeds it to a source agent; 7 agents (the built bundle, on loopback, each
// with its own ports and data dir) form a tree of depth 2; a reader at a
// leaf consumes /stream/live for 30 s while the leaf's parent is SIGKILLed
// at t = 10 s. The checker counts missing TS packets exactly, by our
// sequence numbers (?framing=seq) and by TS continuity counters, checks the
// capture is a byte-identical slice of what the source sent, and ffmpeg
// decodes it without an error, from the capture and straight from the URL.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { request } from 'node:http'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ts } from '../../src/stream'
import { agentUrl, builtBundle, runBundle, type RunningBundle } from '../helpers/bundle'
import { httpRequest, waitFor } from '../helpers/http'
import { tempDir } from '../helpers/tmp'

const TOKEN = 'lab-token'
const READ_MS = 30_000
const KILL_AT_MS = 10_000

const hasFfmpeg = spawnSync('ffmpeg', ['-version']).status === 0

interface Node { run: RunningBundle, url: string, linkPort: number, nodeId: string }

async function startAgent (config: Record<string, unknown>): Promise<Node> {
  const run = await runBundle(['agent', '--config', 'c.json'], { files: { 'c.json': JSON.stringify({ http: { host: '127.0.0.1', port: 0 }, dataDir: 'state', ...config }) } })
  const url = await agentUrl(run)
  const status = (await httpRequest(`${url}/api/status`)).json()
  return { run, url, linkPort: status.link.port, nodeId: status.nodeId }
}

/** A live HTTP read into memory until stop(); resolves with everything read. */
function capture (url: string): { stop (): void, done: Promise<Buffer>, bytes (): number } {
  const parts: Buffer[] = []
  let size = 0
  let req: ReturnType<typeof request> | null = null
  const done = new Promise<Buffer>((resolve) => {
    req = request(url, (res) => {
      res.on('data', (c: Buffer) => { parts.push(c); size += c.length })
      res.on('end', () => resolve(Buffer.concat(parts)))
      res.on('error', () => resolve(Buffer.concat(parts)))
    })
    req.on('error', () => resolve(Buffer.concat(parts)))
    req.on('close', () => resolve(Buffer.concat(parts)))
    req.end()
  })
  return { stop: () => { req?.destroy() }, done, bytes: () => size }
}

const streamOf = async (n: Node): Promise<Record<string, any> | undefined> => (await httpRequest(`${n.url}/api/streams`)).json().streams.find((s: { name: string }) => s.name === 'live')

test('7 agents, depth 2, a relay SIGKILLed mid-stream: the leaf misses no TS packet and the capture decodes', async () => {
  if (!hasFfmpeg) {
    console.log('  [skipped: ffmpeg is not installed (apt-get install ffmpeg; .ci/run installs it)]')
    return
  }
  await builtBundle()
  const dir = tempDir('canopy-lab-stream-')
  const nodes: Node[] = []
  const children: ChildProcess[] = []
  const warm: Array<ReturnType<typeof capture>> = []
  try {
    // The source, then six members, each dialling every agent started before it.
    const source = await startAgent({ stream: { pushToken: TOKEN, childrenMax: 2 } })
    nodes.push(source)
    for (let i = 0; i < 6; i++) {
      nodes.push(await startAgent({ stream: { childrenMax: 2 }, discovery: { staticPeers: nodes.map((n) => n.url) } }))
    }

    // ffmpeg → this process (which keeps what the source was sent) → canopy stream push.
    const sent: Buffer[] = []
    const ffmpeg = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re',
      '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-t', '60', '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '25', '-b:v', '2M', '-maxrate', '2M', '-bufsize', '1M',
      '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '96k', '-f', 'mpegts', '-'], { stdio: ['ignore', 'pipe', 'pipe'] })
    children.push(ffmpeg)
    const pusher = spawn(process.execPath, [await builtBundle(), 'stream', 'push', 'live', '--agent', source.url, '--token', TOKEN], { stdio: ['pipe', 'ignore', 'pipe'] })
    children.push(pusher)
    pusher.stdin!.on('error', () => {})
    ffmpeg.stdout!.on('data', (c: Buffer) => { sent.push(c); pusher.stdin!.write(c) })
    await waitFor(async () => (await streamOf(source))?.newestSeq > 20, 15_000, 'the source to have the stream')

    // Members join one after another: the first two under the source, the rest below them.
    for (const n of nodes.slice(1)) {
      warm.push(capture(`${n.url}/stream/live`))
      await waitFor(async () => (await streamOf(n))?.attached === true, 10_000, 'a member to attach')
      await new Promise((r) => setTimeout(r, 300))
    }
    await new Promise((r) => setTimeout(r, 1500))
    const trees = await Promise.all(nodes.map(streamOf))
    const depth = Math.max(...trees.map((t) => t!.depth as number))
    assert.ok(depth >= 2, `tree depth ${depth}`)
    const relayIdx = trees.findIndex((t) => t!.depth === 1 && t!.children.length > 0)
    assert.ok(relayIdx > 0, 'a relay at depth 1 with children')
    const relay = nodes[relayIdx]!
    const leaf = nodes.find((n) => n.nodeId === trees[relayIdx]!.children[0].nodeId)!

    // The reader at the leaf, plain TS and with our sequence numbers.
    const plain = capture(`${leaf.url}/stream/live`)
    const framed = capture(`${leaf.url}/stream/live?framing=seq`)
    await new Promise((r) => setTimeout(r, KILL_AT_MS))
    relay.run.child.kill('SIGKILL')
    await new Promise((r) => setTimeout(r, READ_MS - KILL_AT_MS))
    plain.stop()
    framed.stop()
    const [tsData, seqData] = await Promise.all([plain.done, framed.done])

    // 1. By our sequence numbers: every chunk, in order.
    const seqs: number[] = []
    const fromFrames: Buffer[] = []
    let at = 0
    while (at + 6 <= seqData.length) {
      const n = seqData.readUInt16BE(at + 4)
      if (at + 6 + n * 188 > seqData.length) break
      seqs.push(seqData.readUInt32BE(at))
      fromFrames.push(seqData.subarray(at + 6, at + 6 + n * 188))
      at += 6 + n * 188
    }
    const gaps = seqs.slice(1).filter((s, i) => s !== seqs[i]! + 1).length
    assert.ok(seqs.length > 500, `${seqs.length} chunks read`)
    assert.is(gaps, 0, 'no chunk missing or out of order')

    // 2. By TS continuity counters, and byte for byte against what the source was sent.
    const whole = tsData.subarray(0, tsData.length - (tsData.length % 188))
    const cc = new ts.ContinuityChecker()
    for (let i = 0; i < whole.length; i += 188) cc.check(whole, i)
    assert.is(cc.missing, 0, 'continuity counters: no packet missing')
    assert.is(cc.errors, 0)
    const original = Buffer.concat(sent)
    const start = original.indexOf(whole.subarray(0, 188 * 4))
    assert.ok(start >= 0 && start % 188 === 0, 'the capture starts on a packet the source sent')
    assert.ok(original.subarray(start, start + whole.length).equals(whole), 'byte-identical: no packet missing, changed or added')
    assert.is(ts.pidOf(whole), 0, 'it starts at a PAT (a start point)')
    const framedBytes = Buffer.concat(fromFrames)
    const fstart = original.indexOf(framedBytes.subarray(0, 188 * 4))
    assert.ok(fstart >= 0 && original.subarray(fstart, fstart + framedBytes.length).equals(framedBytes), 'the framed capture is byte-identical too')

    // 3. The leaf re-attached and says it lost nothing.
    const after = await streamOf(leaf)
    assert.ok(after!.reattaches.length >= 1, 'the leaf re-attached')
    assert.is.not(after!.parent.nodeId, relay.nodeId)
    assert.is(after!.chunks.lost, 0)
    console.log(`  [leaf re-attached in ${after!.reattaches.at(-1).attachMs} ms (${after!.reattaches.at(-1).reason}); ${seqs.length} chunks, ${(whole.length / 1048576).toFixed(1)} MiB in ${READ_MS / 1000} s]`)

    // 4. A real decoder reads the capture without an error.
    const file = join(dir.path, 'leaf.ts')
    writeFileSync(file, whole)
    const decode = spawnSync('ffmpeg', ['-hide_banner', '-v', 'error', '-i', file, '-f', 'null', '-'], { encoding: 'utf8' })
    assert.is(decode.status, 0, decode.stderr)
    assert.is(decode.stderr.trim(), '', `ffmpeg -f null reported: ${decode.stderr}`)
    const probe = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', file], { encoding: 'utf8' })
    assert.is(probe.status, 0, probe.stderr)
    assert.equal([...new Set(probe.stdout.split('\n').filter((l) => l !== ''))].sort(), ['aac', 'h264'])

    // 5. A real player reads /stream/NAME itself (ffplay, VLC and mpv use the same HTTP + TS path as ffmpeg here).
    const live = spawnSync('ffmpeg', ['-hide_banner', '-v', 'error', '-i', `${leaf.url}/stream/live`, '-t', '3', '-f', 'null', '-'], { encoding: 'utf8', timeout: 20_000 })
    assert.is(live.status, 0, live.stderr)
    assert.is(live.stderr.trim(), '', `ffmpeg reading the live URL reported: ${live.stderr}`)
  } finally {
    for (const w of warm) w.stop()
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
    for (const n of nodes) n.run.cleanup()
    const exits = [...nodes.map((n) => n.run.exited), ...children.map((c) => new Promise((r) => { if (c.exitCode !== null || c.signalCode !== null) r(null); else c.once('exit', r) }))]
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 3000))])
    dir.remove()
  }
})

test.run()
