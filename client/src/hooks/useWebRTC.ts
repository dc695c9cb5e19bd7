// The room hook: coordinates signaling, local media, the media transport (mesh for P2P rooms,
// SFU for SFU rooms) and the UI state, and offers the actions of the controls.
import { useCallback, useEffect, useReducer, useRef, useState } from 'react'
import { MeshTransport } from '../services/meshTransport'
import { openLocalMedia, type DeviceChoice } from '../services/media'
import type { JoinAnswer, MediaState, RoomMode, Signal } from '../services/protocol'
import { SfuTransport } from '../services/sfuTransport'
import { SignalingClient, type ConnectionStatus } from '../services/socket'
import type { MediaTransport, PeerState, RemoteMediaStats, TransportContext } from '../services/transport'
import { hasTurnServer, type MediaKind } from '../state/mediaStatus'
import { initialRoomState, roomReducer, type RoomState } from '../state/room'

export interface UseWebRTCOptions {
  roomId: string
  userId: string
  userName: string
  /** Mode for a room this join creates (an existing room keeps its own). */
  mode?: RoomMode
  rawAudio: boolean
  devices: DeviceChoice
  startAudio: boolean
  startVideo: boolean
}

export type JoinStatus = 'preparing' | 'joining' | 'joined' | 'failed' | 'left'

const EMOJI_LIFETIME_MS = 4000
const REJOIN_RETRY_MS = 1500
const REJOIN_MAX_TRIES = 40

export interface SfuDebug {
  selfId: string
  roomId: string
  mode: RoomMode | null
  joinStatus: JoinStatus
  peers: () => { userId: string; connectionState: string; iceConnectionState: string; signalingState: string }[]
  stats: () => Promise<Record<string, PeerStatsSummary>>
  remoteTracks: () => Record<string, { kind: string; readyState: string; muted: boolean; enabled: boolean }[]>
  /** Closes the signaling transport as a network blip would; Socket.IO then reconnects. */
  simulateNetworkBlip: () => void
  /** A network that vanishes without a goodbye: this client stops using its WebSocket (which
   * stays open, so the server still counts the old socket until its ping timeout) and
   * reconnects on a new one, as after a switch from Wi-Fi to mobile data. */
  simulateSilentDrop: () => void
  /** Fires 'ended' on the shared screen track, as the browser's own "Stop sharing" does. */
  endScreenShareFromBrowser: () => void
}

export interface PeerStatsSummary {
  audio: { packetsReceived: number; bytesReceived: number; totalAudioEnergy: number; audioLevel: number } | null
  video: { packetsReceived: number; bytesReceived: number; framesDecoded: number; frameWidth: number; frameHeight: number } | null
}

declare global {
  interface Window {
    __sfuDebug?: SfuDebug
  }
}

function summarize(report: RTCStatsReport): PeerStatsSummary {
  const out: PeerStatsSummary = { audio: null, video: null }
  report.forEach((s: Record<string, unknown>) => {
    if (s.type !== 'inbound-rtp') return
    const n = (k: string) => (typeof s[k] === 'number' ? (s[k] as number) : 0)
    if (s.kind === 'audio') {
      out.audio = {
        packetsReceived: n('packetsReceived'),
        bytesReceived: n('bytesReceived'),
        totalAudioEnergy: n('totalAudioEnergy'),
        audioLevel: n('audioLevel'),
      }
    } else if (s.kind === 'video') {
      out.video = {
        packetsReceived: n('packetsReceived'),
        bytesReceived: n('bytesReceived'),
        framesDecoded: n('framesDecoded'),
        frameWidth: n('frameWidth'),
        frameHeight: n('frameHeight'),
      }
    }
  })
  return out
}

export function useWebRTC(opts: UseWebRTCOptions) {
  const [state, dispatch] = useReducer(roomReducer, initialRoomState)
  const [joinStatus, setJoinStatus] = useState<JoinStatus>('preparing')
  const [joinError, setJoinError] = useState<string | null>(null)
  const [connection, setConnection] = useState<ConnectionStatus>('connecting')
  const [localStream, setLocalStream] = useState<MediaStream | null>(null)
  const [screenStream, setScreenStream] = useState<MediaStream | null>(null)
  const [remoteStreams, setRemoteStreams] = useState<Record<string, MediaStream>>({})
  const [peerStates, setPeerStates] = useState<Record<string, PeerState>>({})
  const [localMedia, setLocalMedia] = useState<MediaState>({ audio: false, video: false, screen: false })
  const [mediaProblem, setMediaProblem] = useState<string | null>(null)
  const [notice, setNotice] = useState<string | null>(null)
  const [screenWarning, setScreenWarning] = useState(false)
  // What the tiles and the media banner need (hooks/useMediaHealth.ts).
  const [recovering, setRecovering] = useState<Record<string, boolean>>({})
  const [unsupported, setUnsupported] = useState<Record<string, MediaKind[]>>({})
  const [joinedAt, setJoinedAt] = useState<number | null>(null)
  const [turnConfigured, setTurnConfigured] = useState(false)

  const signalingRef = useRef<SignalingClient | null>(null)
  const transportRef = useRef<MediaTransport | null>(null)
  const localRef = useRef<MediaStream | null>(null)
  const screenRef = useRef<MediaStreamTrack | null>(null)
  const mediaRef = useRef<MediaState>(localMedia)
  const iceRef = useRef<RTCIceServer[]>([])
  const pendingSignals = useRef<{ userId: string; signal: Signal }[]>([])
  const stateRef = useRef<RoomState>(state)
  stateRef.current = state
  const optsRef = useRef(opts)
  optsRef.current = opts
  const leftRef = useRef(false)

  const toast = useCallback((message: string, kind: 'info' | 'success' | 'error' = 'info') => {
    dispatch({ type: 'toast', kind, message })
  }, [])

  const setMedia = useCallback((patch: Partial<MediaState>) => {
    mediaRef.current = { ...mediaRef.current, ...patch }
    setLocalMedia(mediaRef.current)
  }, [])

  /** The tracks we send: microphone plus the screen (while sharing) or the camera. */
  const outgoingStream = useCallback((): MediaStream | null => {
    const local = localRef.current
    const tracks: MediaStreamTrack[] = []
    const audio = local?.getAudioTracks()[0]
    if (audio) tracks.push(audio)
    const video = screenRef.current ?? local?.getVideoTracks()[0]
    if (video) tracks.push(video)
    return tracks.length ? new MediaStream(tracks) : null
  }, [])

  const makeTransport = useCallback(
    (answer: JoinAnswer): MediaTransport => {
      const signaling = signalingRef.current!
      // A new transport: its connections start over, so does every wait for media.
      setRecovering({})
      setUnsupported({})
      setJoinedAt(Date.now())
      setTurnConfigured(hasTurnServer(answer.iceServers ?? iceRef.current))
      const ctx: TransportContext = {
        selfId: answer.userId,
        signaling,
        iceServers: iceRef.current,
        localStream: outgoingStream(),
        callbacks: {
          onRemoteStream: (userId, stream) => setRemoteStreams((m) => ({ ...m, [userId]: stream })),
          onRemoteStreamRemoved: (userId) =>
            setRemoteStreams((m) => {
              if (!(userId in m)) return m
              const next = { ...m }
              delete next[userId]
              return next
            }),
          onPeerState: (userId, ps) => setPeerStates((m) => ({ ...m, [userId]: ps })),
          onNotice: (message, kind) => {
            if (answer.mode === 'sfu') setNotice(message)
            toast(message, kind === 'error' ? 'error' : 'info')
          },
          onUnsupportedTrack: (userId, kind) =>
            setUnsupported((m) => (m[userId]?.includes(kind) ? m : { ...m, [userId]: [...(m[userId] ?? []), kind] })),
          onRecovery: (peer, rs) => setRecovering((m) => (!!m[peer] === (rs === 'recovering') ? m : { ...m, [peer]: rs === 'recovering' })),
        },
      }
      return answer.mode === 'sfu' ? new SfuTransport(ctx) : new MeshTransport(ctx)
    },
    [outgoingStream, toast],
  )

  // ---- lifecycle: media, config, socket, join --------------------------------------------
  useEffect(() => {
    let cancelled = false
    leftRef.current = false
    const signaling = new SignalingClient()
    signalingRef.current = signaling
    const offs: (() => void)[] = []
    let joinedOnce = false
    let rejoinTries = 0
    let rejoinTimer: ReturnType<typeof setTimeout> | null = null

    /** A participant who left or joins again: their tracks and connection are new. */
    const forgetPeer = (userId: string) => {
      const without = <T,>(m: Record<string, T>) => {
        if (!(userId in m)) return m
        const next = { ...m }
        delete next[userId]
        return next
      }
      setUnsupported(without)
      setRecovering(without)
    }

    const join = async () => {
      if (cancelled || leftRef.current) return
      const o = optsRef.current
      setJoinStatus('joining')
      const ack = await signaling.join({
        roomId: o.roomId,
        userId: o.userId,
        userName: o.userName,
        mode: o.mode,
        media: mediaRef.current,
      })
      if (cancelled || leftRef.current) return
      if (!ack.ok) {
        // After a reconnect the server may not have dropped our old socket yet.
        if ((ack.error === 'user_id_taken' || ack.error === 'timeout') && rejoinTries < REJOIN_MAX_TRIES) {
          rejoinTries += 1
          rejoinTimer = setTimeout(() => void join(), REJOIN_RETRY_MS)
          return
        }
        setJoinStatus('failed')
        setJoinError(ack.message ?? ack.error)
        toast(`Could not join: ${ack.message ?? ack.error}`, 'error')
        return
      }
      rejoinTries = 0
      if (ack.iceServers) iceRef.current = ack.iceServers
      transportRef.current?.close()
      setRemoteStreams({})
      setPeerStates({})
      dispatch({ type: 'joined', answer: ack, userName: o.userName, media: mediaRef.current })
      const transport = makeTransport(ack)
      transportRef.current = transport
      transport.start(ack.participants ?? [])
      for (const s of pendingSignals.current.splice(0)) transport.signal(s.userId, s.signal)
      setJoinStatus('joined')
      if (joinedOnce) toast('Reconnected', 'success')
      joinedOnce = true
    }

    offs.push(
      signaling.onRaw('connect', () => {
        setConnection('connected')
        void join()
      }),
      signaling.onRaw('disconnect', (reason) => {
        if (leftRef.current) return
        setConnection('reconnecting')
        toast('Connection to the server lost, reconnecting…', 'error')
        if (reason === 'io server disconnect') signaling.connect()
      }),
      signaling.onRaw('connect_error', () => {
        if (!leftRef.current) setConnection(joinedOnce ? 'reconnecting' : 'connecting')
      }),
      signaling.on('room-participants', (list) => dispatch({ type: 'participants', list })),
      signaling.on('user-joined', (p) => {
        dispatch({ type: 'user-joined', participant: p })
        forgetPeer(p.userId)
        transportRef.current?.userJoined(p)
      }),
      signaling.on('user-left', ({ userId }) => {
        dispatch({ type: 'user-left', userId })
        forgetPeer(userId)
        transportRef.current?.userLeft(userId)
      }),
      signaling.on('signal-receive', ({ userId, signal }) => {
        const t = transportRef.current
        if (t) t.signal(userId, signal)
        else pendingSignals.current.push({ userId, signal })
      }),
      signaling.on('chat-message', (message) => dispatch({ type: 'chat-message', message })),
      signaling.on('emoji-reaction', (reaction) => {
        dispatch({ type: 'emoji', reaction })
        setTimeout(() => dispatch({ type: 'emoji-expired', id: reaction.id }), EMOJI_LIFETIME_MS)
      }),
      signaling.on('media-state', ({ userId, media }) => dispatch({ type: 'media-state', userId, media })),
      signaling.on('server-shutdown', ({ reason }) =>
        toast(`The server is shutting down${reason ? `: ${reason}` : ''}`, 'error'),
      ),
      // Fresh TURN credentials before the last ones expire: replaced in place, so the
      // transports (which hold this array) use them for every connection made from now on.
      signaling.onRaw('ice-servers', (data) => {
        const list = (data as { iceServers?: unknown } | null)?.iceServers
        if (!Array.isArray(list)) return
        iceRef.current.splice(0, iceRef.current.length, ...(list as RTCIceServer[]))
        transportRef.current?.setIceServers(iceRef.current)
      }),
    )

    void (async () => {
      const o = optsRef.current
      // ICE servers come with the join answer only: TURN credentials are for participants.
      const media = await openLocalMedia({
        rawAudio: o.rawAudio,
        audio: o.startAudio,
        video: o.startVideo,
        ...o.devices,
      })
      if (cancelled) {
        media.stream?.getTracks().forEach((t) => t.stop())
        return
      }
      localRef.current = media.stream
      setLocalStream(media.stream)
      setMediaProblem(media.problem)
      if (media.problem) toast(media.problem, 'error')
      setMedia({
        audio: !!media.stream?.getAudioTracks().length,
        video: !!media.stream?.getVideoTracks().length,
        screen: false,
      })
      signaling.connect()
    })()

    return () => {
      cancelled = true
      if (rejoinTimer) clearTimeout(rejoinTimer)
      offs.forEach((off) => off())
      transportRef.current?.close()
      transportRef.current = null
      signaling.disconnect()
      localRef.current?.getTracks().forEach((t) => t.stop())
      screenRef.current?.stop()
      localRef.current = null
      screenRef.current = null
    }
  }, [makeTransport, setMedia, toast])

  // ---- testing hook ---------------------------------------------------------------------
  useEffect(() => {
    window.__sfuDebug = {
      selfId: opts.userId,
      roomId: opts.roomId,
      mode: state.mode,
      joinStatus,
      peers: () => transportRef.current?.peers() ?? [],
      stats: async () => {
        const raw = (await transportRef.current?.stats()) ?? {}
        const out: Record<string, PeerStatsSummary> = {}
        for (const [id, r] of Object.entries(raw)) out[id] = summarize(r)
        return out
      },
      remoteTracks: () => {
        const out: Record<string, { kind: string; readyState: string; muted: boolean; enabled: boolean }[]> = {}
        for (const [id, s] of Object.entries(remoteStreams)) {
          out[id] = s.getTracks().map((t) => ({ kind: t.kind, readyState: t.readyState, muted: t.muted, enabled: t.enabled }))
        }
        return out
      },
      simulateNetworkBlip: () => {
        signalingRef.current?.socket.io.engine?.close()
      },
      simulateSilentDrop: () => {
        const engine = signalingRef.current?.socket.io.engine as unknown as
          | { transport?: { ws?: WebSocket }; _onClose: (reason: string) => void }
          | undefined
        const ws = engine?.transport?.ws
        if (!engine || !ws) return
        // Deaf and mute on the old connection, but never closed: no packet says goodbye.
        ws.onmessage = null
        ws.onclose = null
        ws.onerror = null
        ws.send = () => undefined
        ws.close = () => undefined
        engine._onClose('transport error') // engine.io-client 6's own path for a dead transport
      },
      endScreenShareFromBrowser: () => {
        screenRef.current?.dispatchEvent(new Event('ended'))
      },
    }
  }, [opts.userId, opts.roomId, state.mode, joinStatus, remoteStreams])

  // ---- actions --------------------------------------------------------------------------
  const announce = useCallback((patch: Partial<MediaState>) => {
    setMedia(patch)
    void signalingRef.current?.sendMediaState(patch)
  }, [setMedia])

  /** Opens a device of `kind` that we do not have yet (joined without it, or switching). */
  const acquire = useCallback(
    async (kind: 'audio' | 'video', deviceId?: string): Promise<MediaStreamTrack | null> => {
      const o = optsRef.current
      const res = await openLocalMedia({
        rawAudio: o.rawAudio,
        audio: kind === 'audio',
        video: kind === 'video',
        audioDeviceId: kind === 'audio' ? deviceId : undefined,
        videoDeviceId: kind === 'video' ? deviceId : undefined,
      })
      if (!res.stream) {
        toast(res.problem ?? `Could not open the ${kind === 'audio' ? 'microphone' : 'camera'}`, 'error')
        return null
      }
      const track = kind === 'audio' ? res.stream.getAudioTracks()[0] : res.stream.getVideoTracks()[0]
      const old = localRef.current
      const keep = (old?.getTracks() ?? []).filter((t) => t.kind !== kind)
      for (const t of old?.getTracks() ?? []) if (t.kind === kind) t.stop()
      const next = new MediaStream([...keep, track])
      localRef.current = next
      setLocalStream(next)
      if (!(kind === 'video' && screenRef.current)) {
        await transportRef.current?.setLocalTrack(kind, track, outgoingStream())
      }
      return track
    },
    [outgoingStream, toast],
  )

  const toggleMic = useCallback(async () => {
    let track = localRef.current?.getAudioTracks()[0]
    if (!track) {
      track = (await acquire('audio')) ?? undefined
      if (!track) return
      announce({ audio: true })
      return
    }
    track.enabled = !track.enabled
    announce({ audio: track.enabled })
  }, [acquire, announce])

  const toggleCamera = useCallback(async () => {
    let track = localRef.current?.getVideoTracks()[0]
    if (!track) {
      track = (await acquire('video')) ?? undefined
      if (!track) return
      announce({ video: true })
      return
    }
    track.enabled = !track.enabled
    announce({ video: track.enabled })
  }, [acquire, announce])

  const switchDevice = useCallback(
    async (kind: 'audio' | 'video', deviceId: string) => {
      const wasEnabled = (kind === 'audio' ? localRef.current?.getAudioTracks() : localRef.current?.getVideoTracks())?.[0]?.enabled ?? true
      const track = await acquire(kind, deviceId)
      if (track) {
        track.enabled = wasEnabled
        announce(kind === 'audio' ? { audio: wasEnabled } : { video: wasEnabled })
      }
    },
    [acquire, announce],
  )

  const stopScreenShare = useCallback(async () => {
    const track = screenRef.current
    if (!track) return
    screenRef.current = null
    track.onended = null
    track.stop()
    setScreenStream(null)
    setScreenWarning(false)
    const camera = localRef.current?.getVideoTracks()[0] ?? null
    await transportRef.current?.setLocalTrack('video', camera, outgoingStream(), 'camera')
    announce({ screen: false })
  }, [announce, outgoingStream])

  const startScreenShare = useCallback(async () => {
    if (screenRef.current) return
    if (!navigator.mediaDevices?.getDisplayMedia) {
      toast('Screen sharing is not supported by this browser', 'error')
      return
    }
    let display: MediaStream
    try {
      display = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false })
    } catch (err) {
      const name = (err as { name?: string })?.name
      if (name !== 'NotAllowedError' && name !== 'AbortError') toast('Could not share the screen', 'error')
      return
    }
    const track = display.getVideoTracks()[0]
    if (!track) return
    screenRef.current = track
    setScreenStream(display)
    // Sharing the entire screen shows this window inside itself: warn about the mirror effect.
    const surface = (track.getSettings() as { displaySurface?: string }).displaySurface
    setScreenWarning(surface === 'monitor')
    track.onended = () => void stopScreenShare()
    await transportRef.current?.setLocalTrack('video', track, outgoingStream(), 'screen')
    announce({ screen: true })
  }, [announce, outgoingStream, stopScreenShare, toast])

  const sendChat = useCallback(
    async (message: string) => {
      const text = message.trim()
      if (!text) return false
      const ack = await signalingRef.current?.sendChat(text)
      if (ack && !ack.ok) {
        toast(`Message not sent: ${ack.message ?? ack.error}`, 'error')
        return false
      }
      return true
    },
    [toast],
  )

  const sendEmoji = useCallback(
    async (emoji: string) => {
      const ack = await signalingRef.current?.sendEmoji(emoji)
      if (ack && !ack.ok) toast(`Reaction not sent: ${ack.message ?? ack.error}`, 'error')
    },
    [toast],
  )

  const leave = useCallback(async () => {
    leftRef.current = true
    const signaling = signalingRef.current
    transportRef.current?.close()
    transportRef.current = null
    if (signaling?.connected) await signaling.leave()
    signaling?.disconnect()
    localRef.current?.getTracks().forEach((t) => t.stop())
    screenRef.current?.stop()
    setRemoteStreams({})
    setJoinedAt(null)
    setJoinStatus('left')
    dispatch({ type: 'left' })
  }, [])

  const remoteStats = useCallback(
    async (): Promise<Record<string, RemoteMediaStats>> => (await transportRef.current?.remoteStats?.()) ?? {},
    [],
  )

  return {
    state,
    dispatch,
    remoteStats,
    recovering,
    unsupported,
    joinedAt,
    turnConfigured,
    joinStatus,
    joinError,
    connection,
    localStream,
    screenStream,
    remoteStreams,
    peerStates,
    localMedia,
    mediaProblem,
    notice,
    screenWarning,
    dismissScreenWarning: () => setScreenWarning(false),
    toggleMic,
    toggleCamera,
    switchDevice,
    startScreenShare,
    stopScreenShare,
    sendChat,
    sendEmoji,
    leave,
  }
}

export type RoomController = ReturnType<typeof useWebRTC>
