// The signaling client: one Socket.IO connection to the page's own origin (default path
// /socket.io/). It wraps the guide's events (join-room, signal-send, ...) with typed helpers
// that resolve to the server's acknowledgement ({ok: true, ...} or {ok: false, error}).
import { io, type Socket } from 'socket.io-client'
import { t } from '../i18n'
import type {
  Ack,
  ChatMessage,
  EmojiReaction,
  JoinAnswer,
  LobbyAnswer,
  LobbyRequest,
  MediaState,
  ModerationEvent,
  ParticipantInfo,
  RecordingStateEvent,
  Role,
  RoomAccess,
  RoomMode,
  Signal,
} from './protocol'

export interface ServerEvents {
  'room-participants': (list: ParticipantInfo[]) => void
  'user-joined': (p: ParticipantInfo) => void
  'user-left': (p: { userId: string }) => void
  'signal-receive': (p: { userId: string; signal: Signal }) => void
  'chat-message': (m: ChatMessage) => void
  'emoji-reaction': (r: EmojiReaction) => void
  'media-state': (p: { userId: string; media: MediaState }) => void
  'hand-raised': (p: { userId: string; raised: boolean; at: number | null }) => void
  'local-recording': (p: { userId: string; recording: boolean }) => void
  'server-shutdown': (p: { reason?: string }) => void
  'recording-state': (p: RecordingStateEvent) => void
  'room-closed': (p: { roomId: string; reason?: string; by?: string | null; byName?: string | null }) => void
  // access and moderation (docs/protocol.md#access)
  'lobby-admitted': (p: { requestId: string }) => void
  'lobby-denied': (p: { requestId: string; reason?: string; message?: string }) => void
  'lobby-knock': (p: LobbyRequest) => void
  'lobby-resolved': (p: { requestId: string; admitted: boolean; by?: string | null }) => void
  'role-changed': (p: { userId: string; role: Role; by: string | null; grants?: unknown }) => void
  'mute-requested': (p: { kind: 'audio' | 'video'; by?: string; byName?: string }) => void
  'screen-share-stop-requested': (p: { by?: string; byName?: string }) => void
  removed: (p: { by?: string; byName?: string; reason?: string; banSeconds?: number }) => void
  'room-locked': (p: { locked: boolean; by?: string; byName?: string }) => void
  moderation: (p: ModerationEvent) => void
}

/** What a join-room may carry besides who joins (docs/protocol.md#access). */
export interface JoinCredentials {
  /** A signed join token: the server takes the userId and name from it. */
  token?: string
  password?: string
  /** For a join that creates the room: its access policy (with `password`). */
  access?: RoomAccess
}

export function isLobbyAnswer(a: unknown): a is { ok: true } & LobbyAnswer {
  return !!a && typeof a === 'object' && (a as { lobby?: unknown }).lobby === true
}

export type ConnectionStatus = 'connecting' | 'connected' | 'reconnecting' | 'disconnected'

const ACK_TIMEOUT_MS = 10_000

// Reconnection after a network cut: try often, and give up on an attempt after 3 s, so that
// a new attempt is at most ~2.5 s away when the link comes back (an attempt started during
// the cut only has the kernel's SYN retransmissions, 1 s then 2 s later, and then none for
// 4 s). Measured with a 40 s cut: signaling back 0.3-2.4 s after the link.
export const RECONNECT = { reconnectionDelay: 500, reconnectionDelayMax: 1000, timeout: 3000 }
/** `recording-stop` is answered once the file is complete. */
const RECORDING_STOP_TIMEOUT_MS = 30_000

// A read-only registry of the live client, so hooks other than useWebRTC (which owns it)
// can listen to events and join answers on the same connection.
let currentClient: SignalingClient | null = null
const clientListeners = new Set<(c: SignalingClient) => void>()

/** Calls `cb` with the current signaling client (if any) and with every one created later. */
export function onSignalingClient(cb: (c: SignalingClient) => void): () => void {
  clientListeners.add(cb)
  if (currentClient) cb(currentClient)
  return () => {
    clientListeners.delete(cb)
  }
}

const REJOIN_KEY = 'sfu.rejoin'

type Rejoin = { roomId: string; userId: string; rejoinToken?: string; mode?: RoomMode }

function storedRejoin(): Rejoin | null {
  try {
    const value = JSON.parse(sessionStorage.getItem(REJOIN_KEY) ?? 'null') as Rejoin | null
    return value && typeof value.roomId === 'string' && typeof value.userId === 'string' ? value : null
  } catch {
    return null
  }
}

function storeRejoin(answer: JoinAnswer): void {
  try {
    const { roomId, userId, rejoinToken, mode } = answer
    sessionStorage.setItem(REJOIN_KEY, JSON.stringify({ roomId, userId, rejoinToken, mode }))
  } catch {
    // storage unavailable (private mode): a reload then joins as a newcomer
  }
}

export class SignalingClient {
  readonly socket: Socket

  constructor(socket?: Socket) {
    // Same origin, default path: the Python server serves the app and Socket.IO together.
    this.socket = socket ?? io({ autoConnect: false, transports: ['websocket', 'polling'], ...RECONNECT })
    currentClient = this
    clientListeners.forEach((l) => l(this))
    if (!socket) {
      // One console line per change: what a user's log shows after a network problem.
      this.socket.on('connect', () => console.info('signaling: connected'))
      this.socket.on('disconnect', (reason: string) => console.info(`signaling: disconnected (${reason})`))
    }
  }

  private joinListeners = new Set<(answer: JoinAnswer) => void>()
  /** The last successful join-room answer on this client. */
  lastJoinAnswer: JoinAnswer | null = null

  /** Called with every successful join-room answer (first join and rejoins). */
  onJoined(cb: (answer: JoinAnswer) => void): () => void {
    this.joinListeners.add(cb)
    return () => {
      this.joinListeners.delete(cb)
    }
  }

  connect(): void {
    if (!this.socket.connected) this.socket.connect()
  }

  disconnect(): void {
    this.socket.disconnect()
  }

  get connected(): boolean {
    return this.socket.connected
  }

  on<E extends keyof ServerEvents>(event: E, handler: ServerEvents[E]): () => void {
    // socket.io-client's typing of untyped sockets is loose; handlers are checked above.
    this.socket.on(event as string, handler as (...args: unknown[]) => void)
    return () => {
      this.socket.off(event as string, handler as (...args: unknown[]) => void)
    }
  }

  /** Listens to any event, including ones outside the P2P protocol (e.g. `sfu-*`). */
  onRaw(event: string, handler: (...args: unknown[]) => void): () => void {
    this.socket.on(event, handler)
    return () => {
      this.socket.off(event, handler)
    }
  }

  /** Emits an event and resolves to its acknowledgement; a timeout becomes {ok: false, error: 'timeout'}. */
  async request<T = Record<string, unknown>>(
    event: string,
    payload: unknown,
    timeoutMs = ACK_TIMEOUT_MS,
  ): Promise<Ack<T>> {
    try {
      const answer = await this.socket.timeout(timeoutMs).emitWithAck(event, payload)
      if (answer && typeof answer === 'object' && 'ok' in answer) return answer as Ack<T>
      return { ok: false, error: 'invalid_answer', message: t('meeting.unexpectedAnswer') }
    } catch {
      return { ok: false, error: 'timeout', message: t('meeting.noAnswer', { event }) }
    }
  }

  join(p: {
    roomId: string
    userId: string
    userName: string
    mode?: RoomMode
    media?: MediaState
  } & JoinCredentials): Promise<Ack<JoinAnswer> | ({ ok: true } & LobbyAnswer)> {
    // A rejoin of the same user in the same room proves itself with the last answer's token
    // (kept for the tab, so a reload keeps the seat and the creator's right too).
    const last = this.lastJoinAnswer ?? storedRejoin()
    const same = last && last.roomId === p.roomId && last.userId === p.userId ? last : null
    const rejoinToken = same?.rejoinToken
    // A rejoin asks for the room's own mode: a server restarted without its room directory
    // then makes the SFU room an SFU room again, not one of the default mode.
    const payload: Record<string, unknown> = { ...p, mode: p.mode ?? same?.mode }
    for (const k of ['token', 'password', 'access', 'mode', 'media'] as const) if (payload[k] === undefined) delete payload[k]
    if (rejoinToken) payload.rejoinToken = rejoinToken
    return this.request<JoinAnswer>('join-room', payload).then((ack) => {
      console.info(`signaling: join-room ${ack.ok ? (isLobbyAnswer(ack) ? 'lobby' : 'ok') : ack.error}`)
      // A knock on a locked room is not a seat: nothing to remember or announce yet.
      if (isLobbyAnswer(ack)) return ack
      if (ack.ok) {
        this.lastJoinAnswer = ack
        storeRejoin(ack)
        this.joinListeners.forEach((l) => l(ack))
      }
      return ack
    })
  }

  startRecording(layout?: 'grid' | 'speaker'): Promise<Ack<{ recordingId: string }>> {
    return this.request('recording-start', layout ? { layout } : {})
  }

  stopRecording(): Promise<Ack<{ recordingId: string }>> {
    return this.request('recording-stop', {}, RECORDING_STOP_TIMEOUT_MS)
  }

  leave(): Promise<Ack> {
    return this.request('leave-room', {}, 3000)
  }

  sendSignal(userId: string, targetUserId: string, signal: Signal): Promise<Ack> {
    return this.request('signal-send', { targetUserId, userId, signal })
  }

  sendChat(message: string): Promise<Ack<{ id: string; timestamp: number }>> {
    return this.request('chat-message', { message })
  }

  sendEmoji(emoji: string): Promise<Ack<{ id: string }>> {
    return this.request('emoji-reaction', { emoji })
  }

  sendMediaState(media: Partial<MediaState>): Promise<Ack<{ media: MediaState }>> {
    return this.request('media-state', media)
  }

  /** Tells the room we record it in this browser, or stopped (#18). */
  localRecording(recording: boolean): Promise<Ack<{ recording: boolean }>> {
    return this.request('local-recording', { recording })
  }

  /** Our own hand up or down (#18). */
  raiseHand(raised: boolean): Promise<Ack<{ raised: boolean; at: number | null }>> {
    return this.request('raise-hand', { raised })
  }

  // -- moderation (moderators only; others get forbidden) -----------------------------------
  lobbyAdmit(requestId: string): Promise<Ack> {
    return this.request('lobby-admit', { requestId })
  }

  lobbyDeny(requestId: string, reason?: string): Promise<Ack> {
    return this.request('lobby-deny', reason ? { requestId, reason } : { requestId })
  }

  setRole(userId: string, role: Role): Promise<Ack> {
    return this.request('set-role', { userId, role })
  }

  muteParticipant(userId: string, kind: 'audio' | 'video'): Promise<Ack> {
    return this.request('mute-participant', { userId, kind })
  }

  stopScreenShareOf(userId: string): Promise<Ack> {
    return this.request('stop-screen-share', { userId })
  }

  removeParticipant(userId: string, reason?: string): Promise<Ack> {
    return this.request('remove-participant', reason ? { userId, reason } : { userId })
  }

  lockRoom(locked: boolean): Promise<Ack> {
    return this.request('lock-room', { locked })
  }

  endMeeting(): Promise<Ack> {
    return this.request('end-meeting', {})
  }
}
