// Polls the transport's per-participant stats every POLL_MS and derives what each remote tile
// says (media status, connection quality) and the room's media banner (state/mediaStatus.ts).
import { useEffect, useMemo, useRef, useState } from 'react'
import type { MediaState, RoomMode } from '../services/protocol'
import type { ConnectionStatus } from '../services/socket'
import type { PeerState, RemoteMediaStats } from '../services/transport'
import {
  mediaBanner,
  newTracker,
  observe,
  POLL_MS,
  primaryKind,
  quality,
  qualityTooltip,
  tileStatus,
  type Banner,
  type Expected,
  type MediaKind,
  type MediaStatus,
  type MediaTracker,
  type Quality,
} from '../state/mediaStatus'

export interface TileHealth {
  status: MediaStatus
  message: string | null
  quality: Quality
  /** The numbers behind `quality`, for the indicator's tooltip. */
  qualityText: string
}

export interface MediaHealthInput {
  mode: RoomMode | null
  /** When the current join was answered (null: not joined). */
  joinedAt: number | null
  connection: ConnectionStatus
  turnConfigured: boolean
  /** We have a microphone, camera or screen track to send. */
  publishing: boolean
  remotes: { userId: string; media: MediaState }[]
  peerStates: Record<string, PeerState>
  /** Connections being repaired: remote userIds (P2P) or 'publish'/'subscribe' (SFU). */
  recovering: Record<string, boolean>
  unsupported: Record<string, MediaKind[]>
  remoteStats: () => Promise<Record<string, RemoteMediaStats>>
}

export interface MediaHealth {
  tiles: Record<string, TileHealth>
  banner: Banner | null
}

const expectedOf = (m: MediaState): Expected => ({ video: m.video || m.screen, audio: m.audio })

export function useMediaHealth(input: MediaHealthInput): MediaHealth {
  const inputRef = useRef(input)
  inputRef.current = input
  const [trackers, setTrackers] = useState<Record<string, MediaTracker>>({})
  const [now, setNow] = useState(() => Date.now())
  const [downSince, setDownSince] = useState<number | null>(null)

  useEffect(() => {
    setDownSince((d) => (input.connection === 'connected' ? null : (d ?? Date.now())))
  }, [input.connection])

  // A new join starts every participant's wait afresh (its connections are new).
  useEffect(() => setTrackers({}), [input.joinedAt])

  useEffect(() => {
    let stopped = false
    let busy = false
    const poll = async () => {
      if (busy) return
      busy = true
      let stats: Record<string, RemoteMediaStats> = {}
      try {
        stats = await inputRef.current.remoteStats()
      } catch {
        // A connection closed under getStats: judge by what we had.
      }
      busy = false
      if (stopped) return
      const t = Date.now()
      const remotes = inputRef.current.remotes
      setTrackers((prev) => {
        const next: Record<string, MediaTracker> = {}
        for (const r of remotes) {
          const expect = primaryKind(expectedOf(r.media))
          next[r.userId] = observe(prev[r.userId] ?? newTracker(expect, t), stats[r.userId], expect, t)
        }
        return next
      })
      setNow(t)
    }
    void poll()
    const timer = setInterval(() => void poll(), POLL_MS)
    return () => {
      stopped = true
      clearInterval(timer)
    }
  }, [])

  return useMemo(() => {
    const sfu = input.mode === 'sfu'
    const tiles: Record<string, TileHealth> = {}
    const summary: { status: MediaStatus; connection?: PeerState }[] = []
    for (const r of input.remotes) {
      const expected = expectedOf(r.media)
      const tracker = trackers[r.userId] ?? newTracker(primaryKind(expected), now)
      const connection = tracker.sample?.connectionState ?? (sfu ? input.peerStates.subscribe : input.peerStates[r.userId])
      const recovering = !!(sfu ? input.recovering.subscribe : input.recovering[r.userId])
      const st = tileStatus({
        tracker,
        expected,
        now,
        connection,
        recovering,
        offline: input.connection !== 'connected',
        unsupported: input.unsupported[r.userId] ?? [],
      })
      const reading =
        st.status === 'ok' ? quality(tracker.previous, tracker.sample, expected.video && !r.media.screen, tracker.sampleAt - tracker.previousAt) : null
      tiles[r.userId] = {
        ...st,
        quality: reading?.quality ?? 'unknown',
        qualityText: reading ? qualityTooltip(reading, tracker.sample?.candidateType, tracker.sample?.reducedLayer) : '',
      }
      summary.push({ status: st.status, connection })
    }
    const banner = mediaBanner({
      now,
      joinedAt: input.joinedAt,
      mode: input.mode,
      signalingDownSince: downSince,
      turnConfigured: input.turnConfigured,
      publishing: input.publishing,
      publishState: input.peerStates.publish,
      subscribeState: input.peerStates.subscribe,
      tiles: summary,
    })
    return { tiles, banner }
  }, [input.mode, input.joinedAt, input.connection, input.turnConfigured, input.publishing, input.remotes, input.peerStates, input.recovering, input.unsupported, trackers, now, downSince])
}
