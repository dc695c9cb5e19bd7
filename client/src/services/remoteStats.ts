// Per-participant summaries of a connection's getStats report, for the tiles' quality
// indicators: what arrives (inbound-rtp per kind) and over which path (the selected ICE pair).
import type { PeerState, RemoteMediaStats } from './transport'

type Stat = Record<string, unknown>

const num = (s: Stat, k: string): number => (typeof s[k] === 'number' ? (s[k] as number) : 0)
const opt = (s: Stat, k: string): number | undefined => (typeof s[k] === 'number' ? (s[k] as number) : undefined)

/** The inbound-rtp fields that tell whose media a stream is. */
export interface InboundIdentity {
  kind: 'audio' | 'video'
  trackIdentifier?: string
  mid?: string
}

/** The selected candidate pair's round-trip time and local candidate type, if any. */
export function selectedPath(report: RTCStatsReport): { rttMs?: number; candidateType?: string } {
  const all = new Map<string, Stat>()
  report.forEach((s: Stat) => all.set(s.id as string, s))
  let pair: Stat | undefined
  for (const s of all.values()) {
    if (s.type === 'transport' && typeof s.selectedCandidatePairId === 'string') {
      pair = all.get(s.selectedCandidatePairId)
      if (pair) break
    }
  }
  if (!pair) {
    // Firefox marks the pair itself; others: the nominated pair that succeeded.
    for (const s of all.values()) {
      if (s.type !== 'candidate-pair') continue
      if (s.selected === true) {
        pair = s
        break
      }
      if (!pair && s.nominated === true && s.state === 'succeeded') pair = s
    }
  }
  if (!pair) return {}
  const out: { rttMs?: number; candidateType?: string } = {}
  const rtt = opt(pair, 'currentRoundTripTime')
  if (rtt !== undefined) out.rttMs = Math.round(rtt * 1000)
  const local = typeof pair.localCandidateId === 'string' ? all.get(pair.localCandidateId) : undefined
  if (local && typeof local.candidateType === 'string') out.candidateType = local.candidateType
  return out
}

/**
 * Summarizes one connection's report per remote participant. `owner` names the participant
 * an inbound stream belongs to, or null for one nobody shows (skipped). When a participant
 * has two streams of a kind (camera and screen), the one with more packets wins.
 */
export function summarizeRemote(
  report: RTCStatsReport,
  connectionState: PeerState,
  owner: (inbound: InboundIdentity) => string | null,
): Record<string, RemoteMediaStats> {
  const out: Record<string, RemoteMediaStats> = {}
  const path = selectedPath(report)
  const entry = (userId: string): RemoteMediaStats => {
    let e = out[userId]
    if (!e) {
      e = { connectionState, ...path }
      out[userId] = e
    }
    return e
  }
  report.forEach((s: Stat) => {
    if (s.type !== 'inbound-rtp' || (s.kind !== 'audio' && s.kind !== 'video')) return
    const kind = s.kind
    const userId = owner({
      kind,
      trackIdentifier: typeof s.trackIdentifier === 'string' ? s.trackIdentifier : undefined,
      mid: typeof s.mid === 'string' ? s.mid : undefined,
    })
    if (userId === null) return
    const e = entry(userId)
    const previous = e[kind]
    if (previous && previous.packetsReceived >= num(s, 'packetsReceived')) return
    const common = {
      packetsLost: num(s, 'packetsLost'),
      packetsReceived: num(s, 'packetsReceived'),
      bytesReceived: num(s, 'bytesReceived'),
    }
    if (kind === 'audio') {
      e.audio = { ...common, jitter: num(s, 'jitter') }
    } else {
      e.video = {
        ...common,
        framesPerSecond: num(s, 'framesPerSecond'),
        framesDecoded: num(s, 'framesDecoded'),
        frameWidth: opt(s, 'frameWidth'),
        frameHeight: opt(s, 'frameHeight'),
      }
    }
  })
  return out
}
