// Who may enter and what they may do, as the app sees it (docs/security.md has the server's
// side): the join token handed to the app, the messages of every access refusal, and which
// controls a participant's grants and role show. Pure functions, so they are unit-tested.
import type { Grants, ModerationEvent, Role } from '../services/protocol'

// -- the join token ----------------------------------------------------------------------------
// A token reaches the app in one of three ways:
//   /room/R?token=JWT   a link from `sfu token create` or the operator's application
//   /room/R#token=JWT   an embedding page's iframe src (a fragment never leaves the browser:
//                       not in the server's access log, not in a Referer)
//   postMessage         an embedding page posts {type: "sfu-join-token", token} to the iframe
//                       (after the app's {type: "sfu-ready"}; see onEmbedToken)
// The app removes the token from the address bar at once, so it is not bookmarked, shared by
// copying the address, or kept in the history.

export interface TakenToken {
  token: string | null
  /** The address without the token (path, the other query parameters, the other fragment). */
  cleaned: string
}

/** Reads a token from `?token=` or `#token=` and gives the address without it. */
export function takeToken(pathname: string, search: string, hash: string): TakenToken {
  const q = new URLSearchParams(search)
  const h = new URLSearchParams(hash.replace(/^#/, ''))
  const token = q.get('token') || h.get('token') || null
  q.delete('token')
  h.delete('token')
  const qs = q.toString()
  const hs = h.toString()
  return { token: token?.trim() || null, cleaned: `${pathname}${qs ? `?${qs}` : ''}${hs ? `#${hs}` : ''}` }
}

export interface TokenHints {
  name: string | null
  sub: string | null
  exp: number | null
  grants: Partial<TokenGrantsClaim> | null
}

interface TokenGrantsClaim {
  join: boolean
  publish: boolean | { audio?: boolean; video?: boolean; screen?: boolean }
  subscribe: boolean
  chat: boolean
  record: boolean
  moderate: boolean
}

/** What a JWT says about its holder, read without verifying it: for display before the join
 * answer only (the server verifies; its answer is what counts). Null if it is not a JWT. */
export function tokenHints(token: string): TokenHints | null {
  const parts = token.split('.')
  if (parts.length !== 3) return null
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/')
    const json = new TextDecoder().decode(Uint8Array.from(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0)))
    const claims = JSON.parse(json) as Record<string, unknown>
    if (!claims || typeof claims !== 'object') return null
    return {
      name: typeof claims.name === 'string' && claims.name.trim() ? claims.name.trim() : null,
      sub: typeof claims.sub === 'string' ? claims.sub : null,
      exp: typeof claims.exp === 'number' ? claims.exp : null,
      grants: claims.grants && typeof claims.grants === 'object' ? (claims.grants as Partial<TokenGrantsClaim>) : null,
    }
  } catch {
    return null
  }
}

// The token is kept for the tab (sessionStorage, per room) so a reload or a reconnect
// rejoins; it is forgotten when the server refuses it or removes us.
type SessionStore = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>
const TOKEN_KEY = (roomId: string) => `sfu.joinToken.${roomId}`

function session(): SessionStore | null {
  try {
    return sessionStorage
  } catch {
    return null
  }
}

export function saveJoinToken(roomId: string, token: string, store: SessionStore | null = session()): void {
  try {
    store?.setItem(TOKEN_KEY(roomId), token)
  } catch {
    /* storage full or unavailable: a reload then needs the link again */
  }
}

export function storedJoinToken(roomId: string, store: SessionStore | null = session()): string | null {
  try {
    return store?.getItem(TOKEN_KEY(roomId)) || null
  } catch {
    return null
  }
}

export function forgetJoinToken(roomId: string, store: SessionStore | null = session()): void {
  try {
    store?.removeItem(TOKEN_KEY(roomId))
  } catch {
    /* nothing kept */
  }
}

/** At start-up, on a room's page: takes the token out of the address bar (replaceState) and
 * keeps it for the tab. Returns it (or the one kept from before), or null. */
export function adoptUrlToken(roomId: string, loc: Pick<Location, 'pathname' | 'search' | 'hash'> = location): string | null {
  const { token, cleaned } = takeToken(loc.pathname, loc.search, loc.hash)
  if (token) {
    history.replaceState(history.state, '', cleaned)
    saveJoinToken(roomId, token)
    return token
  }
  return storedJoinToken(roomId)
}

export const EMBED_TOKEN_MESSAGE = 'sfu-join-token'
export const EMBED_READY_MESSAGE = 'sfu-ready'

/** The token in a postMessage from the embedding page, or null (other messages, other senders). */
export function embedTokenOf(data: unknown, fromParent: boolean): string | null {
  if (!fromParent || !data || typeof data !== 'object') return null
  const d = data as { type?: unknown; token?: unknown }
  return d.type === EMBED_TOKEN_MESSAGE && typeof d.token === 'string' && d.token.trim() ? d.token.trim() : null
}

// -- room passwords typed on this page ---------------------------------------------------------
// Kept in memory only (never in storage or the URL): the creator's password from the start
// page, and the one a joiner typed, so a reconnect rejoins without asking again.
const passwords = new Map<string, string>()
export function rememberRoomPassword(roomId: string, password: string): void {
  passwords.set(roomId, password)
}
export function roomPassword(roomId: string): string | null {
  return passwords.get(roomId) ?? null
}

// -- refusals ----------------------------------------------------------------------------------
/** How the app answers a refused join-room: ask for a password, or a full page. */
export type JoinProblem =
  | { kind: 'password'; error: 'password_required' | 'wrong_password' | 'rate_limited'; text: string | null }
  | { kind: 'page'; error: string; title: string; text: string; home: boolean }

const PAGES: Record<string, { title: string; text: string }> = {
  unknown_room: {
    title: 'This meeting does not exist',
    text: 'Check the link you were given: it may be mistyped, or the meeting has ended.',
  },
  token_required: {
    title: 'This meeting needs an invitation link',
    text: 'Only people with a personal invitation link can join. Ask the organiser for one.',
  },
  invalid_token: {
    title: 'This invitation link is not valid',
    text: 'The link is incomplete, was changed, or is for another meeting. Ask the organiser for a new one.',
  },
  token_expired: {
    title: 'This invitation link has expired',
    text: 'Ask the organiser for a new link.',
  },
  removed: {
    title: 'You were removed from this meeting',
    text: 'You cannot rejoin it for now.',
  },
  forbidden: {
    title: 'You may not join this meeting',
    text: 'Your invitation does not allow it.',
  },
  room_full: { title: 'This meeting is full', text: 'A seat frees up when someone leaves: try again in a moment.' },
}

/** The answer to a join refusal `error` (with the server's `message`); null: not an access
 * refusal (the room shows it as before: "Could not join: ..."). */
export function joinProblem(error: string, message?: string | null): JoinProblem | null {
  switch (error) {
    case 'password_required':
      return { kind: 'password', error, text: null }
    case 'wrong_password':
      return { kind: 'password', error, text: 'Wrong password. Try again.' }
    case 'rate_limited':
      return {
        kind: 'password',
        error,
        text: `Too many attempts. Wait a minute, then try again.${message ? ` (${message})` : ''}`,
      }
  }
  const page = PAGES[error]
  if (!page) return null
  // The server's message says what exactly (which grant is missing, how long a ban lasts).
  const text = message && !['unknown_room', 'room_full'].includes(error) ? `${page.text} (${message})` : page.text
  return { kind: 'page', error, title: page.title, text, home: true }
}

/** Why a knock on a locked meeting was not answered with a seat. */
export function lobbyDeniedText(reason: string | undefined, message?: string | null): string {
  switch (reason) {
    case 'timeout':
      return 'No one let you in. Try again later.'
    case 'room_closed':
      return 'The meeting has ended.'
    default:
      // The server's message names who declined, and why if they said.
      return message || 'A moderator declined your request to join.'
  }
}

export function removedText(byName: string | null | undefined, reason: string | null | undefined): string {
  const who = byName || 'A moderator'
  return reason ? `${who} removed you from the meeting: ${reason}` : `${who} removed you from the meeting.`
}

export function endedText(byName: string | null | undefined, reason: string | null | undefined): string {
  if (reason === 'ended') return byName ? `${byName} ended the meeting for everyone.` : 'The meeting was ended for everyone.'
  return 'The meeting was closed.'
}

// -- grants and controls -----------------------------------------------------------------------
export const ALL_GRANTS: Grants = {
  publish: { audio: true, video: true, screen: true },
  subscribe: true,
  chat: true,
  record: false,
  moderate: false,
}

/** The join answer's grants, made whole (an older server sends none: everything but record
 * and moderate, as before). */
export function normalizeGrants(g: unknown): Grants {
  if (!g || typeof g !== 'object') return ALL_GRANTS
  const x = g as Record<string, unknown>
  const pub = x.publish
  const publish =
    typeof pub === 'boolean'
      ? { audio: pub, video: pub, screen: pub }
      : pub && typeof pub === 'object'
        ? {
            audio: (pub as Record<string, unknown>).audio !== false,
            video: (pub as Record<string, unknown>).video !== false,
            screen: (pub as Record<string, unknown>).screen !== false,
          }
        : ALL_GRANTS.publish
  return {
    publish,
    subscribe: x.subscribe !== false,
    chat: x.chat !== false,
    record: x.record === true,
    moderate: x.moderate === true,
  }
}

export interface Controls {
  mic: boolean
  camera: boolean
  screen: boolean
  chatInput: boolean
  /** The server recording's Record/Stop button (SFU rooms). */
  record: boolean
  /** Moderation: participants' actions, lock, end meeting, the lobby. */
  moderate: boolean
}

/** Which controls a participant sees enabled. The server's grants.record already says whether
 * this participant may record (recording.who_can_record); a moderator may always (a moderator
 * by hand-over holds no record grant from the join answer). */
export function controlsFor(grants: Grants, role: Role, mode: 'p2p' | 'sfu' | null): Controls {
  const moderator = role === 'moderator' || grants.moderate
  return {
    mic: grants.publish.audio,
    camera: grants.publish.video,
    screen: grants.publish.screen,
    chatInput: grants.chat,
    record: mode !== null && (grants.record || moderator), // P2P rooms too (#19)
    moderate: moderator,
  }
}

// -- moderation events as toasts ---------------------------------------------------------------
/** The toast of a `moderation` event, from the point of view of `selfId`; null: none (the
 * target of a mute or a removal gets its own message). `detail` is the action's argument:
 * the kind muted, the new role, the removal's reason. */
export function moderationText(e: ModerationEvent, selfId: string | null): string | null {
  const self = (id: string | null | undefined) => !!id && id === selfId
  const by = self(e.by) ? 'You' : e.byName || (e.by === null ? 'The administrator' : 'A moderator')
  const target = self(e.target) ? 'you' : e.targetName || 'a participant'
  const targets = self(e.target) ? 'your' : `${e.targetName || 'a participant'}'s`
  const detail = typeof e.detail === 'string' ? e.detail : null
  if (self(e.target) && ['mute', 'stop-screen-share', 'remove'].includes(e.action)) return null
  switch (e.action) {
    case 'mute':
      return detail === 'video' ? `${by} turned off ${targets} camera` : `${by} muted ${target}`
    case 'stop-screen-share':
      return `${by} stopped ${targets} screen share`
    case 'remove':
      return `${by} removed ${target} from the meeting${detail ? `: ${detail}` : ''}`
    case 'set-role':
      return detail === 'participant' ? `${by} removed ${targets} moderator role` : `${by} made ${target} a moderator`
    case 'lock':
      return `${by} locked the meeting: newcomers wait to be let in`
    case 'unlock':
      return `${by} unlocked the meeting`
    case 'lobby-admit':
      return `${by} let ${e.targetName || 'someone'} in`
    case 'lobby-deny':
      return `${by} did not let ${e.targetName || 'someone'} in`
    case 'end-meeting':
      return null // everyone gets room-closed
    default:
      return `${by}: ${e.action}${e.targetName ? ` (${e.targetName})` : ''}`
  }
}

export function muteRequestText(kind: 'audio' | 'video', byName: string | null | undefined): string {
  const who = byName || 'A moderator'
  return kind === 'audio' ? `${who} muted you. You can unmute yourself when you need to speak.` : `${who} turned off your camera.`
}
