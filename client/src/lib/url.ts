// Routes and query parameters of the app.
//   /                      home: create or join a room
//   /room/<id>             a room's shareable URL: asks for a name, then joins
//   /room/<id>?name=Ann    joins at once as Ann
// Testing aid: `?raw_audio=1` turns off echo cancellation, noise suppression and automatic
// gain control in getUserMedia, so a steady test tone keeps its level (the end-to-end tests
// use it). Users should not need it.

export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/

export type Route =
  | { name: 'home' }
  | { name: 'room'; roomId: string; userName: string | null; rawAudio: boolean }
  | { name: 'recordings'; token: string | null }
  | { name: 'not-found'; path: string }

function truthy(v: string | null): boolean {
  return v !== null && ['1', 'true', 'yes', 'on', ''].includes(v.toLowerCase())
}

export function parseRoute(pathname: string, search: string): Route {
  const path = pathname.replace(/\/+$/, '') || '/'
  if (path === '/') return { name: 'home' }
  if (path === '/recordings') return { name: 'recordings', token: new URLSearchParams(search).get('token') || null }
  const m = /^\/room\/([^/]+)$/.exec(path)
  if (m) {
    let roomId: string
    try {
      roomId = decodeURIComponent(m[1])
    } catch {
      return { name: 'not-found', path: pathname }
    }
    if (!ID_PATTERN.test(roomId)) return { name: 'not-found', path: pathname }
    const q = new URLSearchParams(search)
    const name = q.get('name')?.trim() || null
    return { name: 'room', roomId, userName: name, rawAudio: truthy(q.get('raw_audio')) }
  }
  return { name: 'not-found', path: pathname }
}

/** The shareable URL of a room (no name in it: each person picks their own). */
export function roomUrl(origin: string, roomId: string): string {
  return `${origin}/room/${encodeURIComponent(roomId)}`
}

export function roomPath(roomId: string, userName?: string | null, rawAudio = false): string {
  const q = new URLSearchParams()
  if (userName) q.set('name', userName)
  if (rawAudio) q.set('raw_audio', '1')
  const qs = q.toString()
  return `/room/${encodeURIComponent(roomId)}${qs ? `?${qs}` : ''}`
}

/** The recordings page, with a room's recording token. */
export function recordingsPath(token?: string | null): string {
  return token ? `/recordings?token=${encodeURIComponent(token)}` : '/recordings'
}

/** Accepts a bare room id or a pasted room URL; returns the id or null. */
export function extractRoomId(input: string): string | null {
  const text = input.trim()
  if (!text) return null
  if (ID_PATTERN.test(text)) return text
  const m = /\/room\/([^/?#]+)/.exec(text)
  if (m) {
    try {
      const id = decodeURIComponent(m[1])
      return ID_PATTERN.test(id) ? id : null
    } catch {
      return null
    }
  }
  return null
}

export const NAME_MAX = 64

/** A display name as the server accepts it: trimmed, no control characters, 1..64 chars. */
export function cleanName(input: string): string | null {
  // eslint-disable-next-line no-control-regex
  const name = input.replace(/[\u0000-\u001f\u007f]/g, '').trim()
  if (!name || name.length > NAME_MAX) return null
  return name
}
