// Who may enter and what they may do, as the app sees it (docs/security.md has the server's
// side): the join token handed to the app, the messages of every access refusal, and which
// controls a participant's grants and role show. Pure functions, so they are unit-tested.
import { t } from '../i18n'
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

// The refusals that get a full page (their texts in the catalogue under access.<error>).
const PAGES = ['unknown_room', 'token_required', 'invalid_token', 'token_expired', 'removed', 'forbidden', 'room_full'] as const
type PageError = (typeof PAGES)[number]

/** The answer to a join refusal `error` (with the server's `message`); null: not an access
 * refusal (the room shows it as before: "Could not join: ..."). */
export function joinProblem(error: string, message?: string | null): JoinProblem | null {
  switch (error) {
    case 'password_required':
      return { kind: 'password', error, text: null }
    case 'wrong_password':
      return { kind: 'password', error, text: t('access.wrongPassword') }
    case 'rate_limited':
      return {
        kind: 'password',
        error,
        text: `${t('access.tooManyAttempts')}${message ? ` (${message})` : ''}`,
      }
  }
  if (!(PAGES as readonly string[]).includes(error)) return null
  const page = error as PageError
  const title = t(`access.${page}.title`)
  const base = t(`access.${page}.text`)
  // The server's message says what exactly (which grant is missing, how long a ban lasts).
  const text = message && !['unknown_room', 'room_full'].includes(error) ? `${base} (${message})` : base
  return { kind: 'page', error, title, text, home: true }
}

/** Why a knock on a locked meeting was not answered with a seat. */
export function lobbyDeniedText(reason: string | undefined, message?: string | null): string {
  switch (reason) {
    case 'timeout':
      return t('access.lobbyTimeout')
    case 'room_closed':
      return t('access.lobbyClosed')
    default:
      // The server's message names who declined, and why if they said.
      return message || t('access.lobbyDeclined')
  }
}

export function removedText(byName: string | null | undefined, reason: string | null | undefined): string {
  const who = byName || t('access.aModerator')
  return reason ? t('access.removedByBecause', { who, reason }) : t('access.removedBy', { who })
}

export function endedText(byName: string | null | undefined, reason: string | null | undefined): string {
  if (reason === 'ended') return byName ? t('access.endedBy', { who: byName }) : t('access.endedForEveryone')
  return t('access.closed')
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
  const by = self(e.by) ? t('moderation.you') : e.byName || (e.by === null ? t('moderation.theAdministrator') : t('moderation.aModerator'))
  const target = self(e.target) ? t('moderation.youObject') : e.targetName || t('moderation.aParticipant')
  const targets = self(e.target) ? t('moderation.your') : t('moderation.possessive', { name: e.targetName || t('moderation.aParticipant') })
  const someone = e.targetName || t('moderation.someone')
  const detail = typeof e.detail === 'string' ? e.detail : null
  if (self(e.target) && ['mute', 'stop-screen-share', 'remove'].includes(e.action)) return null
  switch (e.action) {
    case 'mute':
      return detail === 'video' ? t('moderation.cameraOff', { by, target, targets }) : t('moderation.mute', { by, target })
    case 'stop-screen-share':
      return t('moderation.stopScreenShare', { by, target, targets })
    case 'remove':
      return detail ? t('moderation.removeBecause', { by, target, reason: detail }) : t('moderation.remove', { by, target })
    case 'set-role':
      return detail === 'participant' ? t('moderation.demote', { by, target, targets }) : t('moderation.promote', { by, target })
    case 'lock':
      return t('moderation.lock', { by })
    case 'unlock':
      return t('moderation.unlock', { by })
    case 'lobby-admit':
      return t('moderation.admit', { by, target: someone })
    case 'lobby-deny':
      return t('moderation.deny', { by, target: someone })
    case 'end-meeting':
      return null // everyone gets room-closed
    default:
      return `${by}: ${e.action}${e.targetName ? ` (${e.targetName})` : ''}`
  }
}

export function muteRequestText(kind: 'audio' | 'video', byName: string | null | undefined): string {
  const who = byName || t('access.aModerator')
  return kind === 'audio' ? t('access.muteRequested', { who }) : t('access.cameraOffRequested', { who })
}
