// The room hook: coordinates signaling, local media, the media transport (mesh for P2P rooms,
// SFU for SFU rooms) and the UI state, and offers the actions of the controls.
import { useCallback, useEffect, useReducer, useRef, useState } from 'react'
import {
  endedText,
  joinProblem,
  lobbyDeniedText,
  moderationText,
  muteRequestText,
  normalizeGrants,
  rememberRoomPassword,
  removedText,
  forgetJoinToken,
  tokenHints,
} from '../lib/access'
import { t } from '../i18n'
import type { en } from '../i18n/en'
import { RecordedMeshTransport } from '../services/recordedMesh'
import { openLocalMedia, type DeviceChoice } from '../services/media'
import type { Ack, JoinAnswer, MediaState, Role, RoomAccess, RoomMode, Signal } from '../services/protocol'
import { SfuTransport } from '../services/sfuTransport'
import { isLobbyAnswer, SignalingClient, type ConnectionStatus } from '../services/socket'
import type { MediaTransport, PeerState, RemoteMediaStats, TransportContext } from '../services/transport'
import { hasTurnServer, type MediaKind } from '../state/mediaStatus'
import { initialRoomState, roomReducer, type RoomState } from '../state/room'

/** What a moderation request does, for its refusal's toast (meeting.actions in the catalogue). */
type ModerationWhat = keyof (typeof en)['meeting']['actions']

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
  /** A signed join token (the server takes our userId and name from it). */
  token?: string | null
  /** The room's password, if known already (the creator's, or typed before). */
  password?: string | null
  /** For a join that creates the room: its access policy (with `password`). */
  createAccess?: RoomAccess
}

/**
 * Where the join stands. Besides the room itself:
 *   password  the room asks for a password (the gate says why: wrong, rate limited)
 *   lobby     the room is locked: waiting for a moderator to let us in
 *   consent   the room is being recorded: no media is sent until the user chooses
 *   ended     a full-page end: refused (unknown room, token...), removed, meeting ended,
 *             knock denied. No automatic rejoin.
 */
export type JoinStatus = 'preparing' | 'joining' | 'joined' | 'failed' | 'left' | 'password' | 'lobby' | 'consent' | 'ended'

export type ConsentChoice = 'media' | 'muted' | 'leave'

export type Gate =
  | { kind: 'password'; error: string; text: string | null }
  | { kind: 'lobby' }
  | { kind: 'consent'; startedByName: string | null }
  | { kind: 'page'; reason: string; title: string; text: string }

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
  const [gate, setGate] = useState<Gate | null>(null)
  /** Our display name as the server has it (a token's name), once known. */
  const [selfName, setSelfName] = useState<string | null>(() => (opts.token ? tokenHints(opts.token)?.name ?? null : null))

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
  /** Whether the room is recorded on the server now (a P2P room's uplink follows it). */
  const recordedRef = useRef(false)
  // What each join-room of this page carries: the token, the typed password, and our
  // userId once the server gave it (a token's identity), so rejoins match the rejoin token.
  const tokenRef = useRef(opts.token ?? null)
  const passwordRef = useRef(opts.password ?? null)
  const selfIdRef = useRef<string | null>(null)
  const consentedRef = useRef(false)
  const consentRef = useRef<((c: ConsentChoice) => void) | null>(null)
  const joinRef = useRef<(() => Promise<void>) | null>(null)
  const stopShareRef = useRef<(() => Promise<void>) | null>(null)
  const muteRef = useRef<((kind: 'audio' | 'video') => void) | null>(null)
  const leaveRef = useRef<(() => Promise<void>) | null>(null)

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
      return answer.mode === 'sfu' ? new SfuTransport(ctx, {}, { simulcast: answer.simulcast }) : new RecordedMeshTransport(ctx)
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
    // While a join-room request is answered, participant events are held back: the answer's
    // list is the room as it was when we entered it, and anyone who came, went or changed
    // while the server finished our join is told before the answer arrives. Applied after
    // the answer, they are not lost when the answer rebuilds the list.
    let joining = false
    const early: (() => void)[] = []
    const afterJoin = (apply: () => void) => {
      if (joining) early.push(apply)
      else apply()
    }

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

    /** The end of this meeting for us, shown as a full page: no media, no signaling, no
     * automatic rejoin. */
    const end = (reason: string, title: string, text: string) => {
      leftRef.current = true
      if (rejoinTimer) clearTimeout(rejoinTimer)
      consentRef.current?.('leave')
      transportRef.current?.close()
      transportRef.current = null
      signaling.disconnect()
      localRef.current?.getTracks().forEach((t) => t.stop())
      screenRef.current?.stop()
      setRemoteStreams({})
      setJoinedAt(null)
      setGate({ kind: 'page', reason, title, text })
      setJoinStatus('ended')
    }

    /** Tracks of kinds we may not publish are not sent (and not kept open). */
    const dropUngranted = (answer: JoinAnswer) => {
      const g = normalizeGrants(answer.grants)
      const local = localRef.current
      if (!local) return
      const drop = local.getTracks().filter((t) => (t.kind === 'audio' ? !g.publish.audio : !g.publish.video))
      if (!drop.length) return
      drop.forEach((t) => t.stop())
      const next = new MediaStream(local.getTracks().filter((t) => !drop.includes(t)))
      localRef.current = next.getTracks().length ? next : null
      setLocalStream(localRef.current)
      setMedia({ audio: !!localRef.current?.getAudioTracks().length, video: !!localRef.current?.getVideoTracks().length })
    }

    /** A room being recorded: asks before any media is sent (once per page). A rejoin after
     * a network drop does not ask: the participant was in the meeting and saw the recording
     * start (REC indicator), and asking would hold their media back until they answer. */
    const askConsent = async (answer: JoinAnswer): Promise<'skipped' | 'asked' | false> => {
      if (consentedRef.current || joinedOnce || !answer.recording?.recording) return 'skipped'
      const by = answer.recording.startedBy
      const startedByName = by ? (answer.participants.find((p) => p.userId === by)?.userName ?? null) : null
      setGate({ kind: 'consent', startedByName })
      setJoinStatus('consent')
      const choice = await new Promise<ConsentChoice>((resolve) => {
        consentRef.current = resolve
      })
      consentRef.current = null
      if (cancelled || leftRef.current) return false
      setGate(null)
      if (choice === 'leave') {
        await leaveRef.current?.()
        return false
      }
      consentedRef.current = true
      if (choice === 'muted') {
        localRef.current?.getTracks().forEach((t) => (t.enabled = false))
        setMedia({ audio: false, video: false })
      }
      void signaling.sendMediaState({ audio: mediaRef.current.audio, video: mediaRef.current.video })
      return 'asked'
    }

    const refused = (ack: Extract<Ack, { ok: false }>) => {
      const problem = joinProblem(ack.error, ack.message)
      if (problem?.kind === 'password') {
        setGate({ kind: 'password', error: problem.error, text: problem.text })
        setJoinStatus('password')
        return
      }
      if (problem?.kind === 'page') {
        if (['invalid_token', 'token_expired', 'token_required', 'removed'].includes(problem.error)) {
          forgetJoinToken(optsRef.current.roomId)
        }
        end(problem.error, problem.title, problem.text)
        return
      }
      setJoinStatus('failed')
      setJoinError(ack.message ?? ack.error)
      toast(t('meeting.couldNotJoin', { reason: ack.message ?? ack.error }), 'error')
    }

    const join = async () => {
      if (cancelled || leftRef.current) return
      const o = optsRef.current
      setJoinStatus('joining')
      const password = passwordRef.current ?? undefined
      joining = true
      early.length = 0
      const ack = await signaling.join({
        roomId: o.roomId,
        userId: selfIdRef.current ?? o.userId,
        userName: o.userName,
        mode: o.mode,
        media: mediaRef.current,
        token: tokenRef.current ?? undefined,
        password,
        access: password && o.createAccess ? o.createAccess : undefined,
      })
      joining = false
      const held = early.splice(0)
      if (cancelled || leftRef.current) return
      if (!ack.ok) {
        // After a reconnect the server may not have dropped our old socket yet.
        if ((ack.error === 'user_id_taken' || ack.error === 'timeout') && rejoinTries < REJOIN_MAX_TRIES) {
          rejoinTries += 1
          rejoinTimer = setTimeout(() => void join(), REJOIN_RETRY_MS)
          return
        }
        refused(ack)
        return
      }
      if (isLobbyAnswer(ack)) {
        // Locked: this socket waits for lobby-admitted (then joins again) or lobby-denied.
        setGate({ kind: 'lobby' })
        setJoinStatus('lobby')
        return
      }
      rejoinTries = 0
      if (password) rememberRoomPassword(o.roomId, password)
      selfIdRef.current = ack.userId
      const name = ack.userName ?? (tokenRef.current ? tokenHints(tokenRef.current)?.name : null) ?? o.userName
      setSelfName(name)
      if (ack.iceServers) iceRef.current = ack.iceServers
      transportRef.current?.close()
      transportRef.current = null
      setRemoteStreams({})
      setPeerStates({})
      setGate(null)
      dropUngranted(ack)
      dispatch({ type: 'joined', answer: ack, userName: name, media: mediaRef.current })
      held.forEach((apply) => apply())
      recordedRef.current = !!ack.recording?.recording
      const consent = await askConsent(ack)
      if (!consent) return
      const transport = makeTransport(ack)
      transportRef.current = transport
      // Who is here now: some may have come or gone while we were asked about recording.
      const s = stateRef.current
      const here = consent === 'asked' ? s.order.map((id) => s.participants[id]).filter((p) => p && !p.isLocal) : ack.participants
      transport.start(here ?? [])
      transport.setRecorded?.(recordedRef.current)
      for (const p of pendingSignals.current.splice(0)) transport.signal(p.userId, p.signal)
      setJoinStatus('joined')
      if (joinedOnce) toast(t('meeting.reconnected'), 'success')
      joinedOnce = true
    }
    joinRef.current = join

    offs.push(
      signaling.onRaw('connect', () => {
        setConnection('connected')
        void join()
      }),
      signaling.onRaw('disconnect', (reason) => {
        if (leftRef.current) return
        setConnection('reconnecting')
        // The room shows a banner for as long as it lasts (no toast that vanishes).
        if (reason === 'io server disconnect') signaling.connect()
      }),
      signaling.onRaw('connect_error', () => {
        if (!leftRef.current) setConnection(joinedOnce ? 'reconnecting' : 'connecting')
      }),
      signaling.on('room-participants', (list) => afterJoin(() => dispatch({ type: 'participants', list }))),
      signaling.on('user-joined', (p) =>
        afterJoin(() => {
          dispatch({ type: 'user-joined', participant: p })
          forgetPeer(p.userId)
          transportRef.current?.userJoined(p)
        }),
      ),
      signaling.on('user-left', ({ userId }) =>
        afterJoin(() => {
          dispatch({ type: 'user-left', userId })
          forgetPeer(userId)
          transportRef.current?.userLeft(userId)
        }),
      ),
      signaling.on('signal-receive', ({ userId, signal }) => {
        const t = transportRef.current
        if (t) t.signal(userId, signal)
        else pendingSignals.current.push({ userId, signal })
      }),
      signaling.on('chat-message', (message) => dispatch({ type: 'chat-message', message })),
      signaling.on('recording-state', (e) => {
        recordedRef.current = !!e.recording
        transportRef.current?.setRecorded?.(recordedRef.current)
      }),
      signaling.on('emoji-reaction', (reaction) => {
        dispatch({ type: 'emoji', reaction })
        setTimeout(() => dispatch({ type: 'emoji-expired', id: reaction.id }), EMOJI_LIFETIME_MS)
      }),
      signaling.on('media-state', ({ userId, media }) => afterJoin(() => dispatch({ type: 'media-state', userId, media }))),
      signaling.on('hand-raised', ({ userId, at }) => afterJoin(() => dispatch({ type: 'hand', userId, at: at ?? null }))),
      signaling.on('local-recording', ({ userId, recording }) =>
        afterJoin(() => dispatch({ type: 'local-recording', userId, recording: recording === true })),
      ),
      // -- access and moderation --------------------------------------------------------
      signaling.on('lobby-admitted', () => void join()),
      signaling.on('lobby-denied', ({ reason, message }) =>
        end('lobby-denied', reason === 'room_closed' ? t('meeting.endedTitle') : t('meeting.notLetInTitle'), lobbyDeniedText(reason, message)),
      ),
      signaling.on('removed', ({ byName, reason }) => {
        forgetJoinToken(optsRef.current.roomId)
        end('removed', t('meeting.removedTitle'), removedText(byName, reason))
      }),
      signaling.on('room-closed', ({ reason, by, byName }) => {
        const mine = !!by && by === selfIdRef.current
        end('ended', t('meeting.endedTitle'), mine ? t('meeting.youEnded') : endedText(byName, reason))
      }),
      signaling.on('mute-requested', ({ kind, byName }) => {
        if (kind !== 'audio' && kind !== 'video') return
        muteRef.current?.(kind)
        toast(muteRequestText(kind, byName), 'info')
      }),
      signaling.on('screen-share-stop-requested', ({ byName }) => {
        void stopShareRef.current?.()
        toast(t('meeting.screenShareStopped', { who: byName || t('access.aModerator') }), 'info')
      }),
      signaling.on('role-changed', ({ userId, role, by, grants }) =>
        afterJoin(() => {
          dispatch({ type: 'role-changed', userId, role, grants })
          // A hand-over has no moderation event: say why we now hold the right.
          if (by === null && userId === selfIdRef.current && role === 'moderator') {
            toast(t('meeting.nowModerator'), 'info')
          }
        }),
      ),
      signaling.on('room-locked', ({ locked }) => dispatch({ type: 'room-locked', locked })),
      signaling.on('lobby-knock', (request) => {
        dispatch({ type: 'lobby-knock', request })
        toast(t('meeting.waitingToJoin', { name: request.userName }), 'info')
      }),
      signaling.on('lobby-resolved', ({ requestId }) => dispatch({ type: 'lobby-resolved', requestId })),
      signaling.on('moderation', (e) => {
        const text = moderationText(e, selfIdRef.current)
        if (text) toast(text, 'info')
      }),
      signaling.on('server-shutdown', ({ reason }) =>
        toast(reason ? t('meeting.shuttingDownBecause', { reason }) : t('meeting.shuttingDown'), 'error'),
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
      // A token that grants no publishing of a kind: that device is not even opened.
      const publish = normalizeGrants(o.token ? tokenHints(o.token)?.grants : null).publish
      // ICE servers come with the join answer only: TURN credentials are for participants.
      const media = await openLocalMedia({
        rawAudio: o.rawAudio,
        audio: o.startAudio && publish.audio,
        video: o.startVideo && publish.video,
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
      selfId: state.selfId ?? opts.userId,
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
  }, [opts.userId, opts.roomId, state.selfId, state.mode, joinStatus, remoteStreams])

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
        toast(res.problem ?? (kind === 'audio' ? t('meeting.couldNotOpenMicrophone') : t('meeting.couldNotOpenCamera')), 'error')
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
    if (!stateRef.current.grants.publish.audio) return
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
    if (!stateRef.current.grants.publish.video) return
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
    if (screenRef.current || !stateRef.current.grants.publish.screen) return
    if (!navigator.mediaDevices?.getDisplayMedia) {
      toast(t('meeting.screenShareUnsupported'), 'error')
      return
    }
    let display: MediaStream
    try {
      display = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false })
    } catch (err) {
      const name = (err as { name?: string })?.name
      if (name !== 'NotAllowedError' && name !== 'AbortError') toast(t('meeting.couldNotShare'), 'error')
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
        toast(t('meeting.messageNotSent', { reason: ack.message ?? ack.error }), 'error')
        return false
      }
      return true
    },
    [toast],
  )

  const sendEmoji = useCallback(
    async (emoji: string) => {
      const ack = await signalingRef.current?.sendEmoji(emoji)
      if (ack && !ack.ok) toast(t('meeting.reactionNotSent', { reason: ack.message ?? ack.error }), 'error')
    },
    [toast],
  )

  /** Our hand up or down; the others are told by the server. */
  const raiseHand = useCallback(
    async (raised: boolean) => {
      const ack = await signalingRef.current?.raiseHand(raised)
      if (!ack) return
      if (!ack.ok) {
        toast(t(raised ? 'meeting.couldNotRaise' : 'meeting.couldNotLower', { reason: ack.message ?? ack.error }), 'error')
        return
      }
      if (selfIdRef.current) dispatch({ type: 'hand', userId: selfIdRef.current, at: ack.at })
    },
    [toast],
  )

  /** Tells the others whether we record the meeting in this browser. */
  const announceLocalRecording = useCallback(async (recording: boolean) => {
    const ack = await signalingRef.current?.localRecording(recording)
    if (ack?.ok && selfIdRef.current) dispatch({ type: 'local-recording', userId: selfIdRef.current, recording })
  }, [])

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

  leaveRef.current = leave
  stopShareRef.current = stopScreenShare
  // A moderator's "mute": as if we pressed Mute ourselves; we may unmute when we choose.
  muteRef.current = (kind) => {
    const track = kind === 'audio' ? localRef.current?.getAudioTracks()[0] : localRef.current?.getVideoTracks()[0]
    if (track) track.enabled = false
    if (kind === 'audio' ? mediaRef.current.audio : mediaRef.current.video) announce(kind === 'audio' ? { audio: false } : { video: false })
  }

  const submitPassword = useCallback((password: string) => {
    passwordRef.current = password
    // The prompt stays (busy) until the answer: the room, or the prompt again with why.
    void joinRef.current?.()
  }, [])

  const chooseConsent = useCallback((choice: ConsentChoice) => consentRef.current?.(choice), [])

  /** A moderation request; a refusal is shown as a toast (`what`: meeting.actions in the
   * catalogue). Resolves to whether it was done. */
  const moderate = useCallback(
    async (what: ModerationWhat, send: (c: SignalingClient) => Promise<Ack>): Promise<boolean> => {
      const c = signalingRef.current
      if (!c) return false
      const ack = await send(c)
      if (!ack.ok) toast(t('meeting.couldNot', { what: t(`meeting.actions.${what}`), reason: ack.message ?? ack.error }), 'error')
      return ack.ok
    },
    [toast],
  )

  const moderation = {
    admit: async (requestId: string) => {
      if (await moderate('admit', (c) => c.lobbyAdmit(requestId))) dispatch({ type: 'lobby-resolved', requestId })
    },
    deny: async (requestId: string) => {
      if (await moderate('deny', (c) => c.lobbyDeny(requestId))) dispatch({ type: 'lobby-resolved', requestId })
    },
    setRole: (userId: string, role: Role) => moderate('setRole', (c) => c.setRole(userId, role)),
    mute: (userId: string, kind: 'audio' | 'video') => moderate('mute', (c) => c.muteParticipant(userId, kind)),
    stopScreenShare: (userId: string) => moderate('stopScreenShare', (c) => c.stopScreenShareOf(userId)),
    remove: (userId: string, reason?: string) => moderate('remove', (c) => c.removeParticipant(userId, reason)),
    lock: (locked: boolean) => moderate(locked ? 'lock' : 'unlock', (c) => c.lockRoom(locked)),
    endMeeting: () => moderate('endMeeting', (c) => c.endMeeting()),
  }

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
    gate,
    selfName,
    submitPassword,
    chooseConsent,
    moderation,
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
    raiseHand,
    announceLocalRecording,
    leave,
  }
}

export type RoomController = ReturnType<typeof useWebRTC>
