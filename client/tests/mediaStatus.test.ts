import { describe, expect, it } from 'vitest'
import type { RemoteMediaStats } from '../src/services/transport'
import {
  frameRate,
  hasTurnServer,
  lossPercent,
  mediaBanner,
  newTracker,
  observe,
  quality,
  qualityTooltip,
  tileStatus,
  UNREACHABLE_MS,
  type BannerInput,
  type MediaKind,
  type MediaTracker,
} from '../src/state/mediaStatus'

const CAMERA = { video: true, audio: true }
const MIC_ONLY = { video: false, audio: true }

function video(framesDecoded: number, extra: Partial<RemoteMediaStats> = {}): RemoteMediaStats {
  return {
    connectionState: 'connected',
    video: { framesPerSecond: 15, framesDecoded, packetsLost: 0, packetsReceived: framesDecoded * 2, bytesReceived: framesDecoded * 900 },
    ...extra,
  }
}

/** Feeds samples at the given times (ms) to a fresh tracker that waits for `expect` from t=0. */
function feed(samples: [number, RemoteMediaStats | undefined][], expect: MediaKind | null = 'video'): MediaTracker {
  return samples.reduce((t, [at, s]) => observe(t, s, expect, at), newTracker(expect, 0))
}

const status = (t: MediaTracker, now: number, more: Partial<Parameters<typeof tileStatus>[0]> = {}) =>
  tileStatus({ tracker: t, expected: CAMERA, now, recovering: false, unsupported: [], ...more })

describe('tileStatus', () => {
  it('says Connecting… until the bound, then that the network may block the video', () => {
    const t = feed([[2000, undefined], [14_000, undefined]])
    expect(status(t, 14_000)).toEqual({ status: 'connecting', message: 'Connecting…' })
    const later = observe(t, undefined, 'video', UNREACHABLE_MS)
    expect(status(later, UNREACHABLE_MS)).toEqual({
      status: 'unreachable',
      message: "Can't reach this person's video: the network may block it",
    })
  })

  it('is ok while frames are decoded, and the message goes when they come back', () => {
    const unreachable = feed([[2000, undefined], [16_000, video(0)]])
    expect(status(unreachable, 16_000).status).toBe('unreachable')
    const back = observe(unreachable, video(30), 'video', 18_000)
    expect(status(back, 18_000)).toEqual({ status: 'ok', message: null })
    const still = observe(back, video(60), 'video', 20_000)
    expect(status(still, 20_000).status).toBe('ok')
  })

  it('counts packets without decoded frames as not arriving', () => {
    const t = feed([[2000, video(0, { audio: { packetsLost: 0, packetsReceived: 50, bytesReceived: 1, jitter: 0 } })], [16_000, video(0)]])
    expect(status(t, 16_000).status).toBe('unreachable')
  })

  it('says Reconnecting… when frames stop after flowing, and unreachable a bound after the last frame', () => {
    const t = feed([[2000, video(30)], [4000, video(60)], [6000, video(60)], [10_000, video(60)]])
    expect(status(t, 10_000)).toEqual({ status: 'reconnecting', message: 'Reconnecting…' })
    expect(status(t, 4000 + UNREACHABLE_MS).status).toBe('unreachable')
  })

  it('tolerates one late sample before leaving ok', () => {
    const t = feed([[2000, video(30)], [4000, video(30)]])
    expect(status(t, 4000).status).toBe('ok')
  })

  it('says Reconnecting… while the connection is repaired, until the bound', () => {
    const t = feed([[2000, undefined]])
    expect(status(t, 2000, { recovering: true }).status).toBe('reconnecting')
    expect(status(t, UNREACHABLE_MS, { recovering: true }).status).toBe('unreachable')
  })

  it('a failed connection that is not being repaired is unreachable at once', () => {
    const t = feed([[2000, undefined]])
    expect(status(t, 2000, { connection: 'failed' }).status).toBe('unreachable')
    expect(status(t, 2000, { connection: 'failed', recovering: true }).status).toBe('reconnecting')
  })

  it('while the server is unreachable, tiles wait (the banner names the cause)', () => {
    const flowed = feed([[2000, video(30)], [4000, video(60)], [6000, video(60)]])
    expect(status(flowed, 4000 + UNREACHABLE_MS, { offline: true }).status).toBe('reconnecting')
    const never = feed([[2000, undefined]])
    expect(status(never, UNREACHABLE_MS + 1000, { offline: true }).status).toBe('connecting')
    expect(status(never, UNREACHABLE_MS + 1000, { offline: true, connection: 'failed' }).status).toBe('connecting')
    expect(status(feed([[2000, video(30)]]), 2000, { offline: true }).status).toBe('ok')
  })

  it('a counter that restarts (a new connection) counts as progress', () => {
    const t = feed([[2000, video(300)], [4000, video(300)], [8000, video(300)], [10_000, video(12)]])
    expect(status(t, 10_000).status).toBe('ok')
  })

  it('judges a participant without camera by their audio packets', () => {
    const audio = (n: number): RemoteMediaStats => ({
      connectionState: 'connected',
      audio: { packetsLost: 0, packetsReceived: n, bytesReceived: n * 80, jitter: 0.001 },
    })
    const t = feed([[2000, audio(100)], [4000, audio(200)]], 'audio')
    expect(status(t, 4000, { expected: MIC_ONLY }).status).toBe('ok')
    const silent = feed([[2000, undefined], [16_000, undefined]], 'audio')
    expect(status(silent, 16_000, { expected: MIC_ONLY }).message).toBe(
      "Can't reach this person's audio: the network may block it",
    )
  })

  it('turning the camera on starts a new wait: Connecting…, not unreachable', () => {
    let t = feed([[2000, undefined], [20_000, undefined]], null)
    expect(status(t, 20_000, { expected: { video: false, audio: false } }).status).toBe('idle')
    t = observe(t, undefined, 'video', 22_000)
    expect(status(t, 24_000).status).toBe('connecting')
    expect(status(t, 22_000 + UNREACHABLE_MS).status).toBe('unreachable')
  })

  it('a camera turned on again after frames flowed waits afresh (Connecting…)', () => {
    let t = feed([[2000, video(30)], [4000, video(60)]])
    t = observe(t, video(60), 'audio', 6000)
    t = observe(t, video(60), 'video', 30_000)
    expect(status(t, 30_000).status).toBe('connecting')
  })

  it('names what this browser cannot play', () => {
    const t = feed([[2000, undefined]])
    expect(status(t, 2000, { unsupported: ['video'] })).toEqual({
      status: 'unsupported',
      message: "Your browser can't play this person's video",
    })
    expect(status(t, 2000, { unsupported: ['audio'], expected: MIC_ONLY }).message).toBe("Your browser can't play this person's audio")
    expect(status(t, 2000, { unsupported: ['video', 'audio'] }).message).toBe("Your browser can't play this person's video and audio")
    // A kind the participant does not send is not mentioned.
    expect(status(t, 2000, { unsupported: ['video'], expected: MIC_ONLY }).status).toBe('connecting')
  })

  it('a participant who sends nothing is idle', () => {
    const t = feed([[2000, undefined], [30_000, undefined]], null)
    expect(status(t, 30_000, { expected: { video: false, audio: false } })).toEqual({ status: 'idle', message: null })
  })
})

describe('quality', () => {
  const sample = (received: number, lost: number, rttMs?: number, fps = 15): RemoteMediaStats => ({
    connectionState: 'connected',
    rttMs,
    video: { framesPerSecond: fps, framesDecoded: received, packetsLost: lost, packetsReceived: received, bytesReceived: 0 },
  })

  it('is good on a clean, fast path at 15 fps', () => {
    expect(quality(sample(100, 0), sample(200, 0, 20), true)).toEqual({ quality: 'good', lossPct: 0, rttMs: 20, fps: 15 })
  })

  it('grades loss over the last interval, not since the start', () => {
    const before = sample(1000, 100) // 9 % lost in the past
    expect(quality(before, sample(1100, 100), true).quality).toBe('good')
    expect(quality(before, sample(1190, 110), true).lossPct).toBeCloseTo(5, 5)
    expect(quality(before, sample(1190, 110), true).quality).toBe('fair')
    expect(quality(before, sample(1180, 120), true).quality).toBe('poor')
  })

  it.each([
    [149, 'good'],
    [150, 'fair'],
    [399, 'fair'],
    [400, 'poor'],
  ] as const)('round trip %d ms is %s', (rtt, want) => {
    expect(quality(null, sample(100, 0, rtt), true).quality).toBe(want)
  })

  it.each([
    [12, 'good'],
    [11, 'fair'],
    [5, 'fair'],
    [4, 'poor'],
  ] as const)('%d fps is %s for a camera, and not judged for a screen share', (fps, want) => {
    expect(quality(null, sample(100, 0, 10, fps), true).quality).toBe(want)
    expect(quality(null, sample(100, 0, 10, fps), false).quality).toBe('good')
  })

  it('measures the frame rate over the interval when it can', () => {
    // 30 frames in 2 s, though the browser's last-second figure dipped to 4.
    expect(quality(sample(100, 0, 10, 15), sample(130, 0, 10, 4), true, 2000)).toMatchObject({ quality: 'good', fps: 15 })
    expect(frameRate(sample(130, 0), sample(140, 0), 2000)).toBe(5)
    // A new connection (counters went down): the browser's figure.
    expect(frameRate(sample(500, 0), sample(20, 0, 10, 9), 2000)).toBe(9)
    expect(frameRate(null, null, 2000)).toBeNull()
  })

  it('takes the worst measure', () => {
    expect(quality(null, sample(100, 0, 500, 30), true).quality).toBe('poor')
  })

  it('is unknown without numbers', () => {
    expect(quality(null, null, true)).toEqual({ quality: 'unknown', lossPct: null, rttMs: null, fps: null })
  })

  it('measures loss from the start of a new connection when counters went down', () => {
    expect(lossPercent(sample(5000, 40), sample(98, 2))).toBeCloseTo(2, 5)
  })

  it('ignores negative loss (duplicates)', () => {
    expect(lossPercent(null, sample(100, -3))).toBe(0)
  })

  it('shows the numbers in the tooltip', () => {
    const r = quality(sample(100, 0), sample(199, 1, 42), true)
    expect(qualityTooltip(r, 'relay')).toBe('Good connection: loss 1.0 %, round trip 42 ms, 15 fps, via TURN relay')
    expect(qualityTooltip(quality(null, null, true))).toBe('Connection quality unknown')
  })

  it('says when the server sends a smaller simulcast layer for want of bandwidth', () => {
    const reduced = { ...sample(199, 1, 42), reducedLayer: 'picture' as const }
    const r = quality(sample(100, 0), reduced, true)
    expect(r.quality).toBe('fair')
    expect(qualityTooltip(r, undefined, 'picture')).toBe(
      'Fair connection: smaller picture for your connection, loss 1.0 %, round trip 42 ms, 15 fps',
    )
    expect(qualityTooltip(r, undefined, 'frameRate')).toBe(
      'Fair connection: lower frame rate for your connection, loss 1.0 %, round trip 42 ms, 15 fps',
    )
  })
})

describe('hasTurnServer', () => {
  it('finds turn: and turns: URLs, in a string or a list', () => {
    expect(hasTurnServer([])).toBe(false)
    expect(hasTurnServer([{ urls: 'stun:stun.example.org' }])).toBe(false)
    expect(hasTurnServer([{ urls: ['stun:a', 'turn:10.0.0.1:3478?transport=tcp'] }])).toBe(true)
    expect(hasTurnServer([{ urls: 'TURNS:relay.example.org:443' }])).toBe(true)
    expect(hasTurnServer(undefined)).toBe(false)
  })
})

describe('mediaBanner', () => {
  const base: BannerInput = {
    now: 20_000,
    joinedAt: 0,
    mode: 'p2p',
    signalingDownSince: null,
    turnConfigured: false,
    publishing: true,
    tiles: [],
  }

  it('is absent while media arrives or nobody else is here', () => {
    expect(mediaBanner(base)).toBeNull()
    expect(mediaBanner({ ...base, tiles: [{ status: 'ok', connection: 'connected' }] })).toBeNull()
  })

  it('P2P: nothing from anyone past the bound, no TURN: says so', () => {
    const b = mediaBanner({ ...base, tiles: [{ status: 'unreachable', connection: 'failed' }] })
    expect(b?.cause).toBe('no-turn')
    expect(b?.message).toContain('no TURN server is configured; networks that block UDP need one — ask the operator')
  })

  it('P2P: one participant reachable means no banner (their tiles speak for the others)', () => {
    const tiles = [
      { status: 'unreachable' as const, connection: 'failed' as const },
      { status: 'ok' as const, connection: 'connected' as const },
    ]
    expect(mediaBanner({ ...base, tiles })).toBeNull()
    expect(mediaBanner({ ...base, tiles: [tiles[0], { status: 'connecting' as const }] })).toBeNull()
  })

  it('ignores participants who send nothing or whose media this browser cannot play', () => {
    const tiles = [
      { status: 'unreachable' as const, connection: 'connecting' as const },
      { status: 'idle' as const },
      { status: 'unsupported' as const, connection: 'connected' as const },
    ]
    expect(mediaBanner({ ...base, tiles })?.cause).toBe('no-turn')
  })

  it('with TURN configured and no connection ever up: UDP blocked and the relay unreachable', () => {
    const b = mediaBanner({ ...base, turnConfigured: true, tiles: [{ status: 'unreachable', connection: 'failed' }] })
    expect(b?.cause).toBe('udp-blocked')
  })

  it('with TURN and a connection up but no media: the network', () => {
    const b = mediaBanner({ ...base, turnConfigured: true, tiles: [{ status: 'unreachable', connection: 'connected' }] })
    expect(b?.cause).toBe('network')
  })

  it('SFU: our publish connection never connecting is enough, after the bound', () => {
    const sfu = { ...base, mode: 'sfu' as const, publishState: 'connecting' as const }
    expect(mediaBanner({ ...sfu, now: UNREACHABLE_MS - 1 })).toBeNull()
    expect(mediaBanner({ ...sfu, now: UNREACHABLE_MS })?.cause).toBe('no-turn')
    expect(mediaBanner({ ...sfu, now: 1000, publishState: 'failed' })?.cause).toBe('no-turn')
    expect(mediaBanner({ ...sfu, publishing: false })).toBeNull()
  })

  it('SFU: with our connections to the server up, a missing participant is not our network', () => {
    const tiles = [{ status: 'unreachable' as const, connection: 'connected' as const }]
    const sfu = { ...base, mode: 'sfu' as const, tiles }
    expect(mediaBanner({ ...sfu, publishState: 'connected' })).toBeNull()
    expect(mediaBanner({ ...sfu, publishState: 'connected', subscribeState: 'new' })).toBeNull()
    expect(mediaBanner({ ...sfu, publishing: false, subscribeState: 'connected' })).toBeNull()
    expect(mediaBanner({ ...sfu, publishing: false, subscribeState: 'failed' })?.cause).toBe('no-turn')
  })

  it('SFU with TURN: both connections down means UDP blocked', () => {
    const b = mediaBanner({ ...base, mode: 'sfu', turnConfigured: true, publishState: 'failed', subscribeState: 'failed' })
    expect(b?.cause).toBe('udp-blocked')
  })

  it('the server unreachable for a while wins, joined or not', () => {
    expect(mediaBanner({ ...base, signalingDownSince: 16_000 })).toBeNull()
    expect(mediaBanner({ ...base, signalingDownSince: 15_000 })?.cause).toBe('server')
    expect(mediaBanner({ ...base, joinedAt: null, signalingDownSince: 0 })?.cause).toBe('server')
  })

  it('nothing before the join', () => {
    expect(mediaBanner({ ...base, joinedAt: null, tiles: [{ status: 'unreachable' }] })).toBeNull()
  })
})
