import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { rejectedMids, SfuTransport, unsupportedNotice } from '../src/services/sfuTransport'

const SFU_UNAVAILABLE = 'SFU media is not available on this server yet'
import type { SignalingClient } from '../src/services/socket'
import { FakePC } from './fakePeerConnection'

// MediaStream does not exist under node: a stand-in holding its tracks.
class FakeStream {
  constructor(private readonly tracks: { id: string; kind: string }[] = []) {}
  getTracks() {
    return this.tracks
  }
  getAudioTracks() {
    return this.tracks.filter((t) => t.kind === 'audio')
  }
  getVideoTracks() {
    return this.tracks.filter((t) => t.kind === 'video')
  }
}
;(globalThis as { MediaStream?: unknown }).MediaStream ??= FakeStream

/** A FakePC with transceivers, as the SFU transport needs them. */
class SfuPC extends FakePC {
  private trs: { mid: string | null; sender: { replaceTrack: () => Promise<void> }; receiver: { track: { id: string; kind: string } } }[] = []
  answerSdp: string | null = null

  addTransceiver(kindOrTrack: unknown): void {
    const kind = typeof kindOrTrack === 'string' ? kindOrTrack : (kindOrTrack as { kind: string }).kind
    this.trs.push({ mid: String(this.trs.length), sender: { replaceTrack: async () => undefined }, receiver: { track: { id: `r${this.id}-${this.trs.length}`, kind } } })
    return this.trs.at(-1) as unknown as void
  }

  getTransceivers(): RTCRtpTransceiver[] {
    return this.trs as unknown as RTCRtpTransceiver[]
  }

  /** The remote offer's m-lines become receive transceivers (mids 0, 1, ...). */
  async setRemoteDescription(d: RTCSessionDescriptionInit): Promise<void> {
    await super.setRemoteDescription(d)
    if (d.type === 'offer') {
      for (const kind of (d.sdp ?? '').split(',').filter(Boolean)) {
        if (this.trs.length < (d.sdp ?? '').split(',').length) this.addTransceiver(kind)
      }
    }
  }

  async setLocalDescription(d?: RTCSessionDescriptionInit): Promise<void> {
    await super.setLocalDescription(d)
    if (this.answerSdp && this.localDescription?.type === 'answer') this.localDescription = { type: 'answer', sdp: this.answerSdp }
  }
}

type Answer = Record<string, unknown>

function setup(opts: { tracks?: boolean; publishOnly?: boolean } = {}) {
  const pcs: SfuPC[] = []
  const requests: { event: string; payload: Record<string, unknown> }[] = []
  const handlers = new Map<string, (d: unknown) => void>()
  const notices: string[] = []
  const unsupported: string[] = []
  const recovery: string[] = []
  const answers: Record<string, (payload: Record<string, unknown>) => Answer> = {
    'sfu-publish': () => ({ ok: true, description: { type: 'answer', sdp: 'a' } }),
    'sfu-subscribe': () => ({ ok: true }),
    'sfu-subscribe-answer': () => ({ ok: true }),
    'sfu-candidate': () => ({ ok: true }),
    'sfu-unpublish': () => ({ ok: true }),
  }
  const net = { connected: true }
  const signaling = {
    get connected() {
      return net.connected
    },
    request: async (event: string, payload: Record<string, unknown>) => {
      requests.push({ event, payload })
      return answers[event]?.(payload) ?? { ok: false, error: 'unknown_event' }
    },
    onRaw: (event: string, h: (d: unknown) => void) => {
      handlers.set(event, h)
      return () => handlers.delete(event)
    },
  } as unknown as SignalingClient
  const local = opts.tracks === false ? null : new FakeStream([{ id: 'mic', kind: 'audio' }, { id: 'cam', kind: 'video' }])
  const t = new SfuTransport(
    {
      selfId: 'me',
      signaling,
      iceServers: [],
      localStream: local as unknown as MediaStream,
      callbacks: {
        onRemoteStream: () => undefined,
        onRemoteStreamRemoved: () => undefined,
        onPeerState: () => undefined,
        onNotice: (m) => notices.push(m),
        onUnsupportedTrack: (userId, kind) => unsupported.push(`${userId}:${kind}`),
        onRecovery: (peer, state, attempt) => recovery.push(`${peer}:${state}:${attempt}`),
      },
      createPeerConnection: (config) => {
        const pc = new SfuPC(config)
        pcs.push(pc)
        return pc as unknown as RTCPeerConnection
      },
    },
    { random: () => 0.5 },
    { publishOnly: opts.publishOnly, videoSource: opts.publishOnly ? 'screen' : undefined },
  )
  const emit = (event: string, d: unknown) => handlers.get(event)?.(d)
  const count = (event: string) => requests.filter((r) => r.event === event).length
  return { t, pcs, requests, answers, notices, unsupported, recovery, net, emit, count }
}

const setState = (pc: FakePC, state: RTCPeerConnectionState) => {
  pc.connectionState = state
  pc.onconnectionstatechange?.()
}

const offer = (session: number, kinds: string[], tracks: Record<string, unknown>[]) => ({
  session,
  description: { type: 'offer', sdp: kinds.join(',') },
  tracks,
})

describe('rejectedMids', () => {
  it('finds the m-sections with port 0', () => {
    const sdp = [
      'v=0', 's=-',
      'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=mid:0',
      'm=video 0 UDP/TLS/RTP/SAVPF 96', 'a=mid:1',
      'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=mid:2', '',
    ].join('\r\n')
    expect(rejectedMids(sdp)).toEqual(['1'])
    expect(rejectedMids(undefined)).toEqual([])
  })

  it('the notice for our own track names what and why', () => {
    expect(unsupportedNotice({ kind: 'video', reason: 'this browser cannot send VP8' })).toBe(
      'The server cannot take your video: this browser cannot send VP8',
    )
  })
})

describe('SfuTransport recovery', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('a failed publish connection is replaced by a new one, again and again', async () => {
    const { t, pcs, count, recovery } = setup()
    t.start([])
    await vi.advanceTimersByTimeAsync(50)
    expect(count('sfu-publish')).toBe(1)
    for (let i = 1; i <= 8; i++) {
      const pc = pcs.at(-1)!
      setState(pc, 'failed')
      await vi.advanceTimersByTimeAsync(8100)
      expect(pc.closed).toBe(true)
      expect(count('sfu-publish')).toBe(i + 1) // beyond the old limit of 5 restarts
    }
    setState(pcs.at(-1)!, 'connected')
    expect(recovery.at(-1)).toBe('publish:recovered:8')
    t.close()
  })

  it('sfu-connection-closed for subscribe asks for a new subscribe session', async () => {
    const { t, pcs, count, emit } = setup({ tracks: false })
    t.start([])
    emit('sfu-subscribe-offer', offer(1, ['video'], [{ mid: '0', userId: 'bob', kind: 'video', active: true }]))
    await vi.advanceTimersByTimeAsync(50)
    const sub = pcs[0]
    setState(sub, 'connected')
    emit('sfu-connection-closed', { target: 'subscribe', reason: 'failed' })
    await vi.advanceTimersByTimeAsync(600)
    expect(sub.closed).toBe(true)
    expect(count('sfu-subscribe')).toBe(1)
    emit('sfu-subscribe-offer', offer(2, ['video'], [{ mid: '0', userId: 'bob', kind: 'video', active: true }]))
    await vi.advanceTimersByTimeAsync(50)
    expect(pcs).toHaveLength(2)
    expect(pcs[1].remoteDescription?.sdp).toBe('video')
    t.close()
  })

  it('a refused or failed negotiation is repaired, a superseded answer is not', async () => {
    const { t, answers, count, emit } = setup({ tracks: false })
    t.start([])
    answers['sfu-subscribe-answer'] = () => ({ ok: false, error: 'no_pending_offer' })
    emit('sfu-subscribe-offer', offer(1, ['video'], [{ mid: '0', userId: 'bob', kind: 'video' }]))
    await vi.advanceTimersByTimeAsync(5000)
    expect(count('sfu-subscribe')).toBe(0)
    answers['sfu-subscribe-answer'] = () => ({ ok: false, error: 'invalid_sdp', message: 'bad' })
    emit('sfu-subscribe-offer', offer(1, ['video'], [{ mid: '0', userId: 'bob', kind: 'video' }]))
    await vi.advanceTimersByTimeAsync(600)
    expect(count('sfu-subscribe')).toBe(1)
    t.close()
  })

  it('a publish ack that times out is retried (no permanent "unavailable")', async () => {
    const { t, pcs, answers, count, notices } = setup()
    let calls = 0
    answers['sfu-publish'] = () =>
      ++calls <= 3 ? { ok: false, error: 'timeout' } : { ok: true, description: { type: 'answer', sdp: 'a' } }
    t.start([])
    await vi.advanceTimersByTimeAsync(3600) // retried 0.5 s, 1 s and 2 s later
    expect(count('sfu-publish')).toBe(4)
    expect(notices).toEqual([SFU_UNAVAILABLE]) // once
    setState(pcs.at(-1)!, 'connected')
    await vi.advanceTimersByTimeAsync(60_000)
    expect(count('sfu-publish')).toBe(4)
    t.close()
  })

  it('a server without sfu-* events is not asked again', async () => {
    const { t, answers, count, notices } = setup()
    answers['sfu-publish'] = () => ({ ok: false, error: 'unknown_event' })
    t.start([])
    await vi.advanceTimersByTimeAsync(60_000)
    expect(count('sfu-publish')).toBe(1)
    expect(notices).toEqual([SFU_UNAVAILABLE])
    t.close()
  })

  it('does not repair while the signaling socket is down', async () => {
    const { t, pcs, count, net } = setup()
    t.start([])
    await vi.advanceTimersByTimeAsync(50)
    net.connected = false
    setState(pcs[0], 'failed')
    await vi.advanceTimersByTimeAsync(60_000)
    expect(count('sfu-publish')).toBe(1)
    net.connected = true
    await vi.advanceTimersByTimeAsync(1000)
    expect(count('sfu-publish')).toBe(2)
    t.close()
  })

  it('close() ends every repair', async () => {
    const { t, pcs, count } = setup()
    t.start([])
    await vi.advanceTimersByTimeAsync(50)
    setState(pcs[0], 'failed')
    t.close()
    await vi.advanceTimersByTimeAsync(60_000)
    expect(count('sfu-publish')).toBe(1)
  })
})

describe('SfuTransport per-track support', () => {
  it('a rejected m-line in our answer or a rejected track is reported once; the others still play', async () => {
    const { t, pcs, emit, unsupported } = setup({ tracks: false })
    const streams: Record<string, unknown> = {}
    ;(t as unknown as { ctx: { callbacks: { onRemoteStream: (id: string, s: unknown) => void } } }).ctx.callbacks.onRemoteStream = (id, s) => {
      streams[id] = s
    }
    t.start([])
    const tracks = [
      { mid: '0', userId: 'bob', kind: 'audio', active: true },
      { mid: '1', userId: 'bob', kind: 'video', active: true },
      { mid: '2', userId: 'carol', kind: 'video', active: true },
    ]
    emit('sfu-subscribe-offer', offer(1, ['audio', 'video', 'video'], tracks))
    await new Promise((r) => setTimeout(r, 5))
    pcs[0].answerSdp = 'v=0\r\nm=audio 9 X 111\r\na=mid:0\r\nm=video 0 X 96\r\na=mid:1\r\nm=video 9 X 96\r\na=mid:2\r\n'
    emit('sfu-subscribe-offer', offer(1, ['audio', 'video', 'video'], tracks))
    await new Promise((r) => setTimeout(r, 30))
    expect(unsupported).toEqual(['bob:video'])
    expect((streams.bob as FakeStream).getTracks().map((x) => x.kind)).toEqual(['audio'])
    expect((streams.carol as FakeStream).getTracks().map((x) => x.kind)).toEqual(['video'])
    // the server marks it too in later offers: still reported once
    emit('sfu-subscribe-offer', offer(1, ['audio', 'video', 'video'], tracks.map((x) => (x.mid === '1' ? { ...x, rejected: true } : x))))
    await new Promise((r) => setTimeout(r, 30))
    expect(unsupported).toEqual(['bob:video'])
    t.close()
  })

  it('tracks of ours the server cannot take become a notice', async () => {
    const { t, answers, notices } = setup()
    answers['sfu-publish'] = () => ({
      ok: true,
      description: { type: 'answer', sdp: 'a' },
      unsupported: [{ mid: '1', kind: 'video', reason: 'this browser cannot send VP8' }],
    })
    t.start([])
    await new Promise((r) => setTimeout(r, 30))
    expect(notices).toEqual(['The server cannot take your video: this browser cannot send VP8'])
    t.close()
  })
})

describe('SfuTransport.setIceServers', () => {
  it('renewed TURN credentials reach the open connections', async () => {
    const { t, pcs } = setup()
    t.start([])
    await new Promise((r) => setTimeout(r, 20))
    const renewed = [{ urls: ['turn:10.0.0.1:3478'], username: '2000000000:me', credential: 'c2' }]
    t.setIceServers(renewed)
    expect(pcs.length).toBeGreaterThan(0)
    for (const pc of pcs) expect(pc.config.iceServers).toEqual(renewed)
    t.close()
  })
})

describe('SfuTransport.remoteStats', () => {
  it('maps the subscribe connection inbound-rtp to their owners by track and by mid', async () => {
    const { t, pcs, emit } = setup({ tracks: false })
    t.start([])
    const tracks = [
      { mid: '0', userId: 'bob', kind: 'audio', active: true },
      { mid: '1', userId: 'bob', kind: 'video', active: true },
      { mid: '2', userId: 'carol', kind: 'video', active: true },
      { mid: '3', userId: 'dave', kind: 'video', active: true },
    ]
    emit('sfu-subscribe-offer', offer(1, ['audio', 'video', 'video', 'video'], tracks))
    await new Promise((r) => setTimeout(r, 30))
    const pc = pcs[0]
    pc.connectionState = 'connected'
    const ids = pc.getTransceivers().map((x) => x.receiver.track.id)
    const report = new Map<string, Record<string, unknown>>([
      ['P', { id: 'P', type: 'candidate-pair', nominated: true, state: 'succeeded', currentRoundTripTime: 0.01, localCandidateId: 'L' }],
      ['L', { id: 'L', type: 'local-candidate', candidateType: 'host' }],
      ['a', { id: 'a', type: 'inbound-rtp', kind: 'audio', trackIdentifier: ids[0], packetsReceived: 10, packetsLost: 0, bytesReceived: 1000, jitter: 0.001 }],
      ['v', { id: 'v', type: 'inbound-rtp', kind: 'video', trackIdentifier: ids[1], packetsReceived: 20, framesDecoded: 30, framesPerSecond: 15 }],
      ['c', { id: 'c', type: 'inbound-rtp', kind: 'video', mid: '2', packetsReceived: 5, framesDecoded: 3 }],
      ['x', { id: 'x', type: 'inbound-rtp', kind: 'video', trackIdentifier: 'unknown', packetsReceived: 99 }],
    ])
    pc.getStats = async () => report as unknown as RTCStatsReport
    const s = await t.remoteStats()
    expect(Object.keys(s).sort()).toEqual(['bob', 'carol', 'dave'])
    expect(s.bob).toMatchObject({ connectionState: 'connected', rttMs: 10, candidateType: 'host', audio: { packetsReceived: 10, jitter: 0.001 }, video: { packetsReceived: 20, framesDecoded: 30, framesPerSecond: 15 } })
    expect(s.carol.video).toMatchObject({ packetsReceived: 5, framesDecoded: 3, framesPerSecond: 0 })
    expect(s.dave).toEqual({ connectionState: 'connected', rttMs: 10, candidateType: 'host' })
    t.close()
  })

  it('before any subscribe connection: everyone is "new"', async () => {
    const { t } = setup({ tracks: false })
    expect(await t.remoteStats()).toEqual({})
  })
})

describe('SfuTransport publish-only (a recorded P2P room uplink)', () => {
  it('publishes with the given video source, takes no subscribe offer and never asks for one', async () => {
    const { t, pcs, requests, emit, count } = setup({ publishOnly: true })
    t.start([])
    await vi.waitFor(() => expect(count('sfu-publish')).toBe(1))
    expect(Object.values(requests[0].payload.sources as Record<string, string>).sort()).toEqual(['microphone', 'screen'])
    emit('sfu-subscribe-offer', offer(1, ['video'], [{ mid: '0', userId: 'bob', kind: 'video' }]))
    emit('sfu-connection-closed', { target: 'subscribe', reason: 'failed' })
    await new Promise((r) => setTimeout(r, 20))
    expect(pcs).toHaveLength(1) // the publish connection alone
    expect(count('sfu-subscribe')).toBe(0)
    expect(count('sfu-subscribe-answer')).toBe(0)
    expect(await t.remoteStats()).toEqual({})
    t.close()
    expect(count('sfu-unpublish')).toBe(1)
  })

  it('a refusal because the recording just ended is not a problem to show or repair', async () => {
    const { t, answers, notices, count } = setup({ publishOnly: true })
    answers['sfu-publish'] = () => ({ ok: false, error: 'not_sfu_room', message: 'this room is not in SFU mode' })
    t.start([])
    await vi.waitFor(() => expect(count('sfu-publish')).toBe(1))
    await new Promise((r) => setTimeout(r, 50))
    expect(notices).toEqual([])
    expect(count('sfu-publish')).toBe(1)
    t.close()
  })
})
