// What the room tells the user about media that does not arrive: each remote tile's status
// and connection quality, and the room's banner when media cannot be established at all.
// Pure functions of stats samples (MediaTransport.remoteStats(), polled every POLL_MS) and a
// clock, so they are table-tested; hooks/useMediaHealth.ts keeps the trackers between polls.
import { t } from '../i18n'
import type { PeerState, Reduced, RemoteMediaStats } from '../services/transport'

export const POLL_MS = 2000
/** A tile that has waited this long for its media (camera on, no decoded frame) says the
 * network may block it; the banner uses the same bound. */
export const UNREACHABLE_MS = 15_000
/** Media counts as flowing if it progressed within this window: two polls and a margin, so
 * one late sample does not flash a message. */
export const STALL_MS = 5000
/** The signaling socket down this long: the banner says the server is unreachable. */
export const SERVER_DOWN_MS = 5000

export type MediaKind = 'audio' | 'video'
export type MediaStatus = 'idle' | 'connecting' | 'ok' | 'reconnecting' | 'unreachable' | 'unsupported'
export type Quality = 'good' | 'fair' | 'poor' | 'unknown'

/** What a remote participant sends, as their media state says. */
export interface Expected {
  video: boolean
  audio: boolean
}

/** The kind whose arrival a tile is judged by: the picture if any, else the sound. */
export function primaryKind(e: Expected): MediaKind | null {
  return e.video ? 'video' : e.audio ? 'audio' : null
}

/** One remote participant's media progress between polls. */
export interface MediaTracker {
  /** The kind waited for, and since when (reset when it changes, e.g. the camera goes on). */
  expect: MediaKind | null
  since: number
  frames: number
  packets: number
  /** When decoded video frames / received audio packets last increased (null: never). */
  videoAt: number | null
  audioAt: number | null
  /** The latest sample and the one before it, and when they were taken (loss and frame
   * rate are measured over the interval). */
  sample: RemoteMediaStats | null
  previous: RemoteMediaStats | null
  sampleAt: number
  previousAt: number
}

export function newTracker(expect: MediaKind | null, now: number): MediaTracker {
  return {
    expect,
    since: now,
    frames: 0,
    packets: 0,
    videoAt: null,
    audioAt: null,
    sample: null,
    previous: null,
    sampleAt: now,
    previousAt: now,
  }
}

/** Folds one poll's sample (undefined: nothing arrives from this participant) into `t`. */
export function observe(t: MediaTracker, sample: RemoteMediaStats | undefined, expect: MediaKind | null, now: number): MediaTracker {
  const frames = sample?.video?.framesDecoded ?? 0
  const packets = sample?.audio?.packetsReceived ?? 0
  // A counter that changed to a positive value progressed; one that dropped belongs to a new
  // connection (after a recovery) that has decoded something already.
  const videoAt = frames !== t.frames && frames > 0 ? now : t.videoAt
  const audioAt = packets !== t.packets && packets > 0 ? now : t.audioAt
  return {
    expect,
    since: expect !== t.expect ? now : t.since,
    frames,
    packets,
    videoAt,
    audioAt,
    sample: sample ?? null,
    previous: t.sample,
    sampleAt: now,
    previousAt: t.sampleAt,
  }
}

export interface TileInput {
  tracker: MediaTracker
  expected: Expected
  now: number
  /** The state of the connection that carries this participant's media, if known. */
  connection?: PeerState
  /** That connection is being repaired (onRecovery). */
  recovering: boolean
  /** The signaling socket is down: the banner names the cause, the tiles wait for it. */
  offline?: boolean
  /** Kinds of this participant's tracks this browser cannot decode. */
  unsupported: readonly MediaKind[]
  boundMs?: number
}

export interface TileStatus {
  status: MediaStatus
  message: string | null
}

function cannotPlayText(kinds: MediaKind[]): string {
  return kinds.length === 2 ? t('tile.cannotPlay.both') : t(`tile.cannotPlay.${kinds[0]}`)
}

export function tileStatus(i: TileInput): TileStatus {
  const bound = i.boundMs ?? UNREACHABLE_MS
  const cannot = (['video', 'audio'] as const).filter((k) => i.expected[k] && i.unsupported.includes(k))
  if (cannot.length) return { status: 'unsupported', message: cannotPlayText(cannot) }
  const kind = i.tracker.expect
  if (!kind) return { status: 'idle', message: null }
  const at = kind === 'video' ? i.tracker.videoAt : i.tracker.audioAt
  if (at !== null && i.now - at < STALL_MS) return { status: 'ok', message: null }
  // Flowed since we started waiting for this kind, then stopped.
  const flowed = at !== null && at >= i.tracker.since
  const waitingSince = flowed ? at : i.tracker.since
  if (i.offline) return flowed ? { status: 'reconnecting', message: t('tile.reconnecting') } : { status: 'connecting', message: t('tile.connecting') }
  if (i.now - waitingSince >= bound || (i.connection === 'failed' && !i.recovering)) {
    return { status: 'unreachable', message: t(`tile.unreachable.${kind}`) }
  }
  if (i.recovering || flowed) return { status: 'reconnecting', message: t('tile.reconnecting') }
  return { status: 'connecting', message: t('tile.connecting') }
}

// ---- connection quality -------------------------------------------------------------------
/**
 * Connection-quality grades (docs/architecture.md, "Connection quality"). Each measure gets a
 * grade and the tile shows the worst; a measure that is unknown is left out:
 * - loss: packets lost over the last poll, audio and video together: good < 2 %, fair < 8 %
 *   (around where concealment becomes audible and video freezes), else poor;
 * - round-trip time of the selected candidate pair: good < 150 ms, fair < 400 ms (ITU-T
 *   G.114's limits for conversation), else poor;
 * - frame rate of a camera picture (not a screen share, which is legitimately slow), frames
 *   decoded over the last poll (the browser's own framesPerSecond is a 1 s figure that dips
 *   on a busy machine): good >= 12 fps, fair >= 5 fps, else poor.
 */
export const QUALITY_THRESHOLDS = {
  lossPct: { good: 2, fair: 8 },
  rttMs: { good: 150, fair: 400 },
  fps: { good: 12, fair: 5 },
} as const

export interface QualityReading {
  quality: Quality
  lossPct: number | null
  rttMs: number | null
  fps: number | null
}

const RANK: Record<Quality, number> = { unknown: -1, good: 0, fair: 1, poor: 2 }

function worst(grades: Quality[]): Quality {
  return grades.reduce<Quality>((w, g) => (RANK[g] > RANK[w] ? g : w), 'unknown')
}

function counts(s: RemoteMediaStats | null): { lost: number; received: number } {
  const lost = (s?.video?.packetsLost ?? 0) + (s?.audio?.packetsLost ?? 0)
  const received = (s?.video?.packetsReceived ?? 0) + (s?.audio?.packetsReceived ?? 0)
  return { lost, received }
}

/** Loss in % between two samples (or since the start, without a previous one). */
export function lossPercent(previous: RemoteMediaStats | null, sample: RemoteMediaStats | null): number | null {
  if (!sample) return null
  const now = counts(sample)
  let before = counts(previous)
  // Counters that went down belong to a new connection: measure from its start.
  if (now.received < before.received || now.lost < before.lost) before = { lost: 0, received: 0 }
  const lost = Math.max(0, now.lost - before.lost) // duplicates make packetsLost negative
  const received = now.received - before.received
  if (lost + received <= 0) return null
  return (100 * lost) / (lost + received)
}

/** Frames decoded per second between two samples `intervalMs` apart (without a usable
 * previous one: the browser's figure). */
export function frameRate(previous: RemoteMediaStats | null, sample: RemoteMediaStats | null, intervalMs: number): number | null {
  const v = sample?.video
  if (!v) return null
  const before = previous?.video?.framesDecoded
  if (before === undefined || before > v.framesDecoded || intervalMs <= 0) return v.framesPerSecond
  return ((v.framesDecoded - before) * 1000) / intervalMs
}

/** `judgeFps`: the frame rate counts (a camera picture is expected). */
export function quality(
  previous: RemoteMediaStats | null,
  sample: RemoteMediaStats | null,
  judgeFps: boolean,
  intervalMs = 0,
): QualityReading {
  const lossPct = lossPercent(previous, sample)
  const rttMs = sample?.rttMs ?? null
  const fps = judgeFps ? frameRate(previous, sample, intervalMs) : null
  const T = QUALITY_THRESHOLDS
  const grades: Quality[] = []
  if (lossPct !== null) grades.push(lossPct < T.lossPct.good ? 'good' : lossPct < T.lossPct.fair ? 'fair' : 'poor')
  if (rttMs !== null) grades.push(rttMs < T.rttMs.good ? 'good' : rttMs < T.rttMs.fair ? 'fair' : 'poor')
  if (fps !== null) grades.push(fps >= T.fps.good ? 'good' : fps >= T.fps.fair ? 'fair' : 'poor')
  // A smaller simulcast layer sent for want of bandwidth: the link is not good.
  if (sample?.reducedLayer) grades.push('fair')
  return { quality: worst(grades), lossPct, rttMs, fps }
}

/** The indicator's tooltip: the numbers behind the grade. */
export function qualityTooltip(r: QualityReading, candidateType?: string, reducedLayer?: Reduced): string {
  const label = t(`tile.quality.${r.quality}`)
  const parts = [
    reducedLayer === 'frameRate' ? t('tile.reducedFrameRate') : reducedLayer ? t('tile.reducedLayer') : null,
    r.lossPct !== null ? t('tile.loss', { pct: r.lossPct.toFixed(1) }) : null,
    r.rttMs !== null ? t('tile.roundTrip', { ms: Math.round(r.rttMs) }) : null,
    r.fps !== null ? t('tile.fps', { fps: Math.round(r.fps) }) : null,
    candidateType === 'relay' ? 'via TURN relay' : null,
  ].filter(Boolean)
  return parts.length ? `${label}: ${parts.join(', ')}` : label
}

// ---- the room's banner ----------------------------------------------------------------------
export type BannerCause = 'server' | 'no-turn' | 'udp-blocked' | 'network'

export interface Banner {
  cause: BannerCause
  message: string
}

export const BANNER_MESSAGES: Record<BannerCause, string> = {
  server: "Can't reach the server: check your network connection; the app keeps trying.",
  'no-turn':
    "Media can't get through: no TURN server is configured; networks that block UDP need one — ask the operator.",
  'udp-blocked':
    "Media can't get through: this network seems to block UDP, and the TURN server could not be reached either — ask the operator.",
  network: "Media can't get through: the network may block it.",
}

/** Whether an ICE server list has a relay (turn: or turns: URL). */
export function hasTurnServer(servers: readonly RTCIceServer[] | null | undefined): boolean {
  return (servers ?? []).some((s) => {
    const urls = Array.isArray(s.urls) ? s.urls : [s.urls]
    return urls.some((u) => typeof u === 'string' && /^turns?:/i.test(u))
  })
}

export interface BannerInput {
  now: number
  /** When the current join was answered (null: not joined). */
  joinedAt: number | null
  mode: 'p2p' | 'sfu' | null
  /** Since when the signaling socket is down (null: it is up). */
  signalingDownSince: number | null
  turnConfigured: boolean
  /** We have a microphone or camera track to send. */
  publishing: boolean
  /** SFU: our publish and subscribe connections' states. */
  publishState?: PeerState
  subscribeState?: PeerState
  /** Every remote tile: its status and the state of the connection that carries it. */
  tiles: { status: MediaStatus; connection?: PeerState }[]
  boundMs?: number
}

export function mediaBanner(i: BannerInput): Banner | null {
  const bound = i.boundMs ?? UNREACHABLE_MS
  const banner = (cause: BannerCause): Banner => ({ cause, message: BANNER_MESSAGES[cause] })
  if (i.signalingDownSince !== null && i.now - i.signalingDownSince >= SERVER_DOWN_MS) return banner('server')
  if (i.joinedAt === null) return null
  const waiting = i.tiles.filter((t) => t.status !== 'idle' && t.status !== 'unsupported')
  // No remote media from anyone: every participant we wait for is past the bound.
  const nothingArrives = waiting.length > 0 && waiting.every((t) => t.status === 'unreachable')
  let failing: boolean
  let connections: (PeerState | undefined)[]
  if (i.mode === 'sfu') {
    const uplinkDown =
      i.publishing && i.publishState !== 'connected' && (i.publishState === 'failed' || i.now - i.joinedAt >= bound)
    // With any of our connections to the server up, UDP gets through: what is missing is the
    // others' problem, and their tiles say so.
    const downlinkDown = nothingArrives && i.subscribeState !== 'connected' && i.publishState !== 'connected'
    failing = uplinkDown || downlinkDown
    connections = [i.publishing ? i.publishState : undefined, i.subscribeState]
  } else {
    failing = nothingArrives
    connections = waiting.map((t) => t.connection)
  }
  if (!failing) return null
  if (!i.turnConfigured) return banner('no-turn')
  // No candidate pair ever succeeded on any connection: UDP is blocked and TURN did not help.
  if (connections.every((c) => c !== 'connected')) return banner('udp-blocked')
  return banner('network')
}
