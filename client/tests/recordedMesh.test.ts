import { describe, expect, it } from 'vitest'
import { RecordedMeshTransport } from '../src/services/recordedMesh'
import type { SfuTransport } from '../src/services/sfuTransport'
import type { MediaTransport, TrackSource, TransportContext } from '../src/services/transport'

/** A transport that writes down what it is asked. */
function recorder(name: string, log: string[]): MediaTransport {
  const note = (what: string) => log.push(`${name}.${what}`)
  return {
    kind: 'mesh',
    start: () => note('start'),
    userJoined: (p) => note(`joined ${p.userId}`),
    userLeft: (id) => note(`left ${id}`),
    signal: (id) => note(`signal ${id}`),
    setLocalTrack: async (kind, track, _stream, source) => void note(`track ${kind} ${track?.id ?? 'none'} ${source ?? '-'}`),
    peers: () => [{ userId: 'publish', connectionState: 'connected', iceConnectionState: 'connected', signalingState: 'stable' }],
    setIceServers: () => note('ice'),
    stats: async () => ({ publish: new Map() as unknown as RTCStatsReport }),
    remoteStats: async () => ({}),
    close: () => note('close'),
  }
}

function setup() {
  const log: string[] = []
  const notices: string[] = []
  const uplinks: { ctx: TransportContext; source: TrackSource }[] = []
  const ctx = {
    selfId: 'me',
    signaling: {} as TransportContext['signaling'],
    iceServers: [],
    localStream: null,
    callbacks: {
      onRemoteStream: () => undefined,
      onRemoteStreamRemoved: () => undefined,
      onPeerState: () => undefined,
      onNotice: (m: string) => notices.push(m),
    },
  } satisfies TransportContext
  const t = new RecordedMeshTransport(ctx, recorder('mesh', log), (c, source) => {
    uplinks.push({ ctx: c, source })
    return recorder('uplink', log) as unknown as SfuTransport
  })
  return { t, log, notices, uplinks }
}

const track = (id: string, kind: string) => ({ id, kind }) as unknown as MediaStreamTrack
const stream = (name: string) => ({ name }) as unknown as MediaStream

describe('RecordedMeshTransport', () => {
  it('the mesh carries the call; an uplink opens and closes with the recording', async () => {
    const { t, log, uplinks } = setup()
    t.start([])
    t.setRecorded(false)
    expect(t.uploading).toBe(false)
    t.setRecorded(true)
    t.setRecorded(true) // a repeated state opens nothing more
    expect(uplinks).toHaveLength(1)
    expect(t.uploading).toBe(true)
    t.userJoined({ userId: 'bob', userName: 'Bob' } as never)
    t.setRecorded(false)
    expect(t.uploading).toBe(false)
    expect(log).toEqual(['mesh.start', 'uplink.start', 'mesh.joined bob', 'uplink.close'])
  })

  it('tracks go to both; a later uplink starts from the current stream and source', async () => {
    const { t, log, uplinks } = setup()
    const shared = stream('screen+mic')
    await t.setLocalTrack('video', track('scr', 'video'), shared, 'screen')
    expect(log).toEqual(['mesh.track video scr screen'])
    t.setRecorded(true)
    expect(uplinks[0].source).toBe('screen')
    expect(uplinks[0].ctx.localStream).toBe(shared)
    await t.setLocalTrack('audio', null, shared)
    expect(log.slice(-2)).toEqual(['mesh.track audio none -', 'uplink.track audio none -'])
    const peers = t.peers().map((p) => p.userId)
    expect(peers).toEqual(['publish', 'recording-uplink'])
    expect(Object.keys(await t.stats())).toEqual(['publish', 'recording-uplink'])
  })

  it('an uplink opened later uses the renewed ICE servers', () => {
    const { t, uplinks } = setup()
    const renewed = [{ urls: 'turn:turn.example:3478', username: '1:me', credential: 'x' }]
    t.setIceServers(renewed)
    t.setRecorded(true)
    expect(uplinks[0].ctx.iceServers).toBe(renewed)
  })

  it("the uplink's notices say they are about the recording; nobody's tiles follow it", () => {
    const { t, notices, uplinks } = setup()
    t.setRecorded(true)
    uplinks[0].ctx.callbacks.onNotice('SFU publish failed', 'error')
    expect(notices).toEqual(['Recording: SFU publish failed'])
    expect(uplinks[0].ctx.callbacks.onRecovery).toBeUndefined()
  })

  it('close() closes both, and a recording state after it opens nothing', () => {
    const { t, log, uplinks } = setup()
    t.setRecorded(true)
    t.close()
    t.setRecorded(true)
    expect(uplinks).toHaveLength(1)
    expect(log).toEqual(['uplink.start', 'uplink.close', 'mesh.close'])
  })
})
