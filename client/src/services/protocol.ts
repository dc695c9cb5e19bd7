// Types of the signaling protocol (docs/protocol.md). Kept in one place so the reducer, the
// socket service and the transports agree on the shapes.

export type RoomMode = 'p2p' | 'sfu'

export interface MediaState {
  audio: boolean
  video: boolean
  screen: boolean
}

export type Role = 'moderator' | 'participant'

export interface ParticipantInfo {
  userId: string
  userName: string
  media: MediaState
  /** Absent from older servers: a participant. */
  role?: Role
  /** When the hand went up (ms since the epoch), or null/absent when it is down. */
  handRaisedAt?: number | null
  /** Recording the meeting in their own browser, as their app says (#18). */
  localRecording?: boolean
}

/** What a participant may do (the join answer's `grants`; docs/security.md). */
export interface Grants {
  publish: { audio: boolean; video: boolean; screen: boolean }
  subscribe: boolean
  chat: boolean
  record: boolean
  moderate: boolean
}

export type RoomAccess = 'open' | 'password' | 'token'

/** `moderation`: an action of a moderator, to the whole room (the app shows a toast). */
export interface ModerationEvent {
  action: string
  by?: string | null
  byName?: string | null
  target?: string | null
  targetName?: string | null
  detail?: unknown
}

/** A knock on a locked room, as moderators see it. */
export interface LobbyRequest {
  requestId: string
  userName: string
}

export interface ChatMessage {
  id: string
  userId: string
  userName: string
  message: string
  timestamp: number
}

export interface EmojiReaction {
  id: string
  userId: string
  userName: string
  emoji: string
  timestamp: number
}

export interface AckError {
  ok: false
  error: string
  message?: string
}

export type Ack<T = Record<string, unknown>> = ({ ok: true } & T) | AckError

export interface JoinAnswer {
  roomId: string
  /** The meeting's display name ("Weekly design review"); null or absent: unnamed (#18). */
  roomName?: string | null
  userId: string
  mode: RoomMode
  participants: ParticipantInfo[]
  chatHistory: ChatMessage[]
  iceServers: RTCIceServer[]
  isCreator: boolean
  /** Sent back in the next join-room of this user (after a network drop) so the new socket
   * replaces the stale one at once instead of waiting for the server's ping timeout. */
  rejoinToken?: string
  /** The room's recording state (SFU rooms; see docs/protocol.md#recording). */
  recording?: RecordingStateEvent
  /** SFU rooms only: the token that grants reading this room's recordings. */
  recordingToken?: string
  /** Our own display name as the server has it (from a join token's `name`). */
  userName?: string
  role?: Role
  grants?: Partial<Grants> | { publish?: boolean | Partial<Grants['publish']> }
  locked?: boolean
  access?: RoomAccess
  /** Moderators only: the knocks waiting now. */
  lobby?: LobbyRequest[]
  /** SFU rooms: the camera's simulcast encodings, lowest first (absent: one encoding). */
  simulcast?: RTCRtpEncodingParameters[]
}

/** A join to a locked room: the socket waits in the lobby for `lobby-admitted`/`lobby-denied`. */
export interface LobbyAnswer {
  lobby: true
  requestId: string
}

/** `recording-state` (server to client), also the join answer's `recording`. */
export interface RecordingStateEvent {
  recording: boolean
  recordingId?: string | null
  startedBy?: string | null
  startedAt?: number | null
  layout?: string | null
  reason?: string
  error?: boolean
}

/** A WebRTC signal as relayed by `signal-send`/`signal-receive`: an SDP description or a
 * candidate. `gen` numbers the sender's connections to this peer (absent: 0); a signal of a
 * higher generation means the sender started a new connection (see meshTransport.ts). */
export type Signal =
  | { type: RTCSdpType; sdp?: string; gen?: number }
  | { candidate: RTCIceCandidateInit; gen?: number }

export interface ServerConfig {
  iceServers: RTCIceServer[]
  limits?: { idMaxLength?: number; nameMaxLength?: number; chatMaxLength?: number }
  defaultMode?: RoomMode
  version?: string
  /** The server-wide floor of room access (rooms.access). */
  access?: RoomAccess
  /** False: a join to an unknown room is refused `unknown_room` (rooms.create_on_join). */
  createOnJoin?: boolean
}

export const NO_MEDIA: MediaState = { audio: false, video: false, screen: false }

export function normalizeMedia(m: Partial<MediaState> | undefined | null): MediaState {
  return { audio: !!m?.audio, video: !!m?.video, screen: !!m?.screen }
}

export function isDescription(s: unknown): s is { type: RTCSdpType; sdp?: string } {
  return !!s && typeof s === 'object' && typeof (s as { type?: unknown }).type === 'string'
}

export function isCandidate(s: unknown): s is { candidate: RTCIceCandidateInit } {
  return (
    !!s &&
    typeof s === 'object' &&
    'candidate' in s &&
    !!(s as { candidate?: unknown }).candidate &&
    typeof (s as { candidate: unknown }).candidate === 'object'
  )
}
