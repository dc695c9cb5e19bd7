// The room's UI state as a pure reducer: who is here (and their media state), the chat with
// its unread count, floating emoji reactions and toasts. No WebRTC objects live here.
import type {
  ChatMessage,
  EmojiReaction,
  Grants,
  JoinAnswer,
  LobbyRequest,
  MediaState,
  ParticipantInfo,
  Role,
  RoomMode,
} from '../services/protocol'
import { normalizeMedia } from '../services/protocol'
import { ALL_GRANTS, normalizeGrants } from '../lib/access'
import { t } from '../i18n'

export interface Participant extends ParticipantInfo {
  isLocal: boolean
  role: Role
}

export type ToastKind = 'info' | 'success' | 'error'

export interface Toast {
  id: number
  kind: ToastKind
  message: string
}

export interface RoomState {
  roomId: string | null
  /** The meeting's display name from the join answer; null when unnamed (show the id). */
  roomName: string | null
  mode: RoomMode | null
  selfId: string | null
  joined: boolean
  participants: Record<string, Participant>
  /** userIds in order of arrival, the local participant first. */
  order: string[]
  chat: ChatMessage[]
  chatOpen: boolean
  unread: number
  reactions: EmojiReaction[]
  toasts: Toast[]
  nextToastId: number
  /** Our role and grants (the join answer; role-changed). */
  role: Role
  grants: Grants
  locked: boolean
  /** Moderators: the knocks waiting to be answered. */
  lobby: LobbyRequest[]
}

export const MAX_CHAT = 200
export const MAX_TOASTS = 5

export const initialRoomState: RoomState = {
  roomId: null,
  roomName: null,
  mode: null,
  selfId: null,
  joined: false,
  participants: {},
  order: [],
  chat: [],
  chatOpen: false,
  unread: 0,
  reactions: [],
  toasts: [],
  nextToastId: 1,
  role: 'participant',
  grants: ALL_GRANTS,
  locked: false,
  lobby: [],
}

export type RoomAction =
  | { type: 'joined'; answer: JoinAnswer; userName: string; media: MediaState }
  | { type: 'participants'; list: ParticipantInfo[] }
  | { type: 'user-joined'; participant: ParticipantInfo }
  | { type: 'user-left'; userId: string }
  | { type: 'media-state'; userId: string; media: Partial<MediaState> }
  | { type: 'hand'; userId: string; at: number | null }
  | { type: 'local-recording'; userId: string; recording: boolean }
  | { type: 'chat-message'; message: ChatMessage }
  | { type: 'chat-open'; open: boolean }
  | { type: 'emoji'; reaction: EmojiReaction }
  | { type: 'emoji-expired'; id: string }
  | { type: 'toast'; kind: ToastKind; message: string }
  | { type: 'toast-dismiss'; id: number }
  | { type: 'left' }
  | { type: 'role-changed'; userId: string; role: Role; grants?: unknown }
  | { type: 'room-locked'; locked: boolean }
  | { type: 'lobby-knock'; request: LobbyRequest }
  | { type: 'lobby-resolved'; requestId: string }

function withToast(s: RoomState, kind: ToastKind, message: string): RoomState {
  const toasts = [...s.toasts, { id: s.nextToastId, kind, message }].slice(-MAX_TOASTS)
  return { ...s, toasts, nextToastId: s.nextToastId + 1 }
}

function addParticipant(s: RoomState, p: ParticipantInfo, isLocal: boolean): RoomState {
  const participant: Participant = {
    userId: p.userId,
    userName: p.userName,
    media: normalizeMedia(p.media),
    isLocal,
    role: p.role === 'moderator' ? 'moderator' : 'participant',
    handRaisedAt: typeof p.handRaisedAt === 'number' ? p.handRaisedAt : null,
    localRecording: p.localRecording === true,
  }
  const order = s.order.includes(p.userId) ? s.order : [...s.order, p.userId]
  return { ...s, participants: { ...s.participants, [p.userId]: participant }, order }
}

function mergeChat(existing: ChatMessage[], incoming: ChatMessage[]): ChatMessage[] {
  const seen = new Set(existing.map((m) => m.id))
  const merged = [...existing]
  for (const m of incoming) if (!seen.has(m.id)) merged.push(m)
  merged.sort((a, b) => a.timestamp - b.timestamp)
  return merged.slice(-MAX_CHAT)
}

export function roomReducer(s: RoomState, a: RoomAction): RoomState {
  switch (a.type) {
    case 'joined': {
      const { answer } = a
      // A rejoin (after a reconnect) rebuilds the participant list from the server's view.
      let next: RoomState = {
        ...s,
        roomId: answer.roomId,
        roomName: typeof answer.roomName === 'string' && answer.roomName.trim() ? answer.roomName : null,
        mode: answer.mode,
        selfId: answer.userId,
        joined: true,
        participants: {},
        order: [],
        chat: mergeChat(s.chat, answer.chatHistory ?? []),
        role: answer.role ?? (answer.isCreator ? 'moderator' : 'participant'),
        grants: normalizeGrants(answer.grants),
        locked: !!answer.locked,
        lobby: Array.isArray(answer.lobby) ? answer.lobby : [],
      }
      next = addParticipant(next, { userId: answer.userId, userName: a.userName, media: a.media, role: next.role }, true)
      for (const p of answer.participants ?? []) {
        if (p.userId !== answer.userId) next = addParticipant(next, p, false)
      }
      return next
    }
    case 'participants': {
      let next = s
      for (const p of a.list) if (p.userId !== s.selfId) next = addParticipant(next, p, false)
      return next
    }
    case 'user-joined': {
      if (a.participant.userId === s.selfId) return s
      const known = !!s.participants[a.participant.userId]
      const next = addParticipant(s, a.participant, false)
      return known ? next : withToast(next, 'info', t('events.joined', { name: a.participant.userName }))
    }
    case 'user-left': {
      const p = s.participants[a.userId]
      if (!p || p.isLocal) return s
      const participants = { ...s.participants }
      delete participants[a.userId]
      const next = {
        ...s,
        participants,
        order: s.order.filter((id) => id !== a.userId),
        reactions: s.reactions.filter((r) => r.userId !== a.userId),
      }
      return withToast(next, 'info', t('events.left', { name: p.userName }))
    }
    case 'media-state': {
      const p = s.participants[a.userId]
      if (!p) return s
      const media = normalizeMedia({ ...p.media, ...a.media })
      return { ...s, participants: { ...s.participants, [a.userId]: { ...p, media } } }
    }
    case 'hand': {
      const p = s.participants[a.userId]
      if (!p || (p.handRaisedAt ?? null) === a.at) return s
      const next = { ...s, participants: { ...s.participants, [a.userId]: { ...p, handRaisedAt: a.at } } }
      return a.at !== null && !p.isLocal ? withToast(next, 'info', t('events.raisedHand', { name: p.userName })) : next
    }
    case 'local-recording': {
      const p = s.participants[a.userId]
      if (!p || (p.localRecording ?? false) === a.recording) return s
      const next = { ...s, participants: { ...s.participants, [a.userId]: { ...p, localRecording: a.recording } } }
      if (p.isLocal) return next
      return withToast(next, 'info', a.recording ? t('events.recordingLocally', { name: p.userName }) : t('events.stoppedRecording', { name: p.userName }))
    }
    case 'chat-message': {
      if (s.chat.some((m) => m.id === a.message.id)) return s
      const chat = [...s.chat, a.message].slice(-MAX_CHAT)
      const own = a.message.userId === s.selfId
      return { ...s, chat, unread: s.chatOpen ? 0 : own ? s.unread : s.unread + 1 }
    }
    case 'chat-open':
      return { ...s, chatOpen: a.open, unread: a.open ? 0 : s.unread }
    case 'emoji':
      if (s.reactions.some((r) => r.id === a.reaction.id)) return s
      return { ...s, reactions: [...s.reactions, a.reaction].slice(-30) }
    case 'emoji-expired':
      return { ...s, reactions: s.reactions.filter((r) => r.id !== a.id) }
    case 'toast':
      return withToast(s, a.kind, a.message)
    case 'toast-dismiss':
      return { ...s, toasts: s.toasts.filter((toast) => toast.id !== a.id) }
    case 'left':
      return { ...initialRoomState, toasts: s.toasts, nextToastId: s.nextToastId }
    case 'role-changed': {
      const p = s.participants[a.userId]
      const participants = p ? { ...s.participants, [a.userId]: { ...p, role: a.role } } : s.participants
      const self = a.userId === s.selfId
      const role = self ? a.role : s.role
      // The server sends the target's grants with its new role (e.g. record for a moderator).
      const grants = self && a.grants ? normalizeGrants(a.grants) : s.grants
      // A former moderator no longer answers knocks.
      return { ...s, participants, role, grants, lobby: role === 'moderator' || grants.moderate ? s.lobby : [] }
    }
    case 'room-locked':
      return { ...s, locked: a.locked }
    case 'lobby-knock':
      if (s.lobby.some((r) => r.requestId === a.request.requestId)) return s
      return { ...s, lobby: [...s.lobby, a.request] }
    case 'lobby-resolved':
      return { ...s, lobby: s.lobby.filter((r) => r.requestId !== a.requestId) }
  }
}

/** Raised hands, first raised first: [userId, raisedAt] (the participants list's order). */
export function raisedHands(s: Pick<RoomState, 'participants'>): [string, number][] {
  return Object.values(s.participants)
    .filter((p) => typeof p.handRaisedAt === 'number')
    .map((p) => [p.userId, p.handRaisedAt as number] as [string, number])
    .sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))
}
