import { useEffect, useState } from 'react'
import { rememberRoomPassword } from '../lib/access'
import { rememberName, rememberedName } from '../lib/identity'
import { cleanName, extractRoomId, roomPath } from '../lib/url'
import type { RoomMode, ServerConfig } from '../services/protocol'
import { navigate } from '../router'

/** The server's limit of a meeting's display name (limits.room_name_max_length). */
export const ROOM_NAME_MAX = 100

/** POST /api/rooms: a new room, with a password when one is given and a display name when one
 * is typed (blank: unnamed, the server shows the id). */
export function createRoomBody(mode: RoomMode, password: string, meetingName = ''): Record<string, unknown> {
  const body: Record<string, unknown> = password ? { mode, access: 'password', password } : { mode }
  const name = meetingName.trim()
  if (name) body.name = name
  return body
}

async function createRoom(mode: RoomMode, password: string, meetingName: string): Promise<{ roomId: string; mode: RoomMode }> {
  const res = await fetch('/api/rooms', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(createRoomBody(mode, password, meetingName)),
  })
  const body = (await res.json().catch(() => ({}))) as { roomId?: string; mode?: RoomMode; message?: string; error?: string }
  if (!res.ok || !body.roomId) throw new Error(body.message ?? body.error ?? `HTTP ${res.status}`)
  return { roomId: body.roomId, mode: body.mode ?? mode }
}

export function Home() {
  // Testing aid: keep ?raw_audio=1 from the start page into the room (see lib/url.ts).
  const rawAudio = new URLSearchParams(location.search).get('raw_audio') === '1'
  const [name, setName] = useState(rememberedName)
  const [mode, setMode] = useState<RoomMode>('p2p')
  const [joinId, setJoinId] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const [password, setPassword] = useState('')
  const [meetingName, setMeetingName] = useState('')
  const [config, setConfig] = useState<ServerConfig | null>(null)
  useEffect(() => {
    let live = true
    fetch('/api/config')
      .then((r) => (r.ok ? (r.json() as Promise<ServerConfig>) : null))
      .then((c) => {
        if (!live || !c) return
        setConfig(c)
        if (c.defaultMode === 'sfu' || c.defaultMode === 'p2p') setMode(c.defaultMode) // the operator's choice
      })
      .catch(() => undefined)
    return () => {
      live = false
    }
  }, [])
  // rooms.access = "token": rooms are made by the operator's application (tokens), not here.
  const canCreate = config?.access !== 'token'
  const needsPassword = config?.access === 'password'

  const validName = (): string | null => {
    const n = cleanName(name)
    if (!n) setError('Please enter your name (up to 64 characters).')
    else rememberName(n)
    return n
  }

  return (
    <main className="page home">
      <h1>Meetings</h1>
      <p className="muted">Video meetings in the browser: a small call goes straight between the browsers; a meeting goes through this server.</p>
      <label className="field">
        Your name
        <input aria-label="Your name" value={name} maxLength={64} onChange={(e) => setName(e.target.value)} placeholder="e.g. Ada" />
      </label>

      {!canCreate && (
        <section className="card" data-testid="token-only">
          <h2>New meeting</h2>
          <p className="muted">Meetings on this server are joined with an invitation link from the organiser.</p>
        </section>
      )}
      {canCreate && (
      <section className="card">
        <h2>New meeting</h2>
        <fieldset className="mode-choice">
          <legend>Kind of meeting</legend>
          <label>
            <input type="radio" name="mode" value="p2p" checked={mode === 'p2p'} onChange={() => setMode('p2p')} />
            Small call, direct (P2P){' '}
            <span className="muted small">
              — video goes straight between the browsers; best for 2–4 people. It can still be recorded on the server (each person then also
              sends their video to it).
            </span>
          </label>
          <label>
            <input type="radio" name="mode" value="sfu" checked={mode === 'sfu'} onChange={() => setMode('sfu')} />
            Meeting, through the server (SFU){' '}
            <span className="muted small">— everyone sends their video once and the server passes it on; for larger groups and weaker connections.</span>
          </label>
        </fieldset>
        <label className="field">
          Meeting name (optional)
          <input
            aria-label="Meeting name"
            value={meetingName}
            maxLength={ROOM_NAME_MAX}
            onChange={(e) => setMeetingName(e.target.value)}
            placeholder="e.g. Weekly design review"
            data-testid="create-meeting-name"
          />
        </label>
        <label className="field">
          {needsPassword ? 'Password' : 'Password (optional)'}
          <input
            type="password"
            aria-label="Meeting password"
            autoComplete="new-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            placeholder={needsPassword ? 'Required on this server' : 'Anyone with the link can join'}
            data-testid="create-password"
          />
        </label>
        <button
          type="button"
          disabled={busy}
          onClick={async () => {
            setError(null)
            const n = validName()
            if (!n) return
            if (needsPassword && !password) {
              setError('Meetings on this server need a password.')
              return
            }
            setBusy(true)
            try {
              const room = await createRoom(mode, password, meetingName)
              if (password) rememberRoomPassword(room.roomId, password)
              // The name is remembered: the pre-join screen has it (the creator sees it too).
              navigate(roomPath(room.roomId, null, rawAudio))
            } catch (err) {
              setError(`Could not create a room: ${(err as Error).message}`)
            } finally {
              setBusy(false)
            }
          }}
        >
          Create room
        </button>
      </section>
      )}

      <section className="card">
        <h2>Join a meeting</h2>
        <form
          onSubmit={(e) => {
            e.preventDefault()
            setError(null)
            const id = extractRoomId(joinId)
            if (!id) {
              setError('Enter a room id or a room link.')
              return
            }
            const n = validName()
            if (!n) return
            navigate(roomPath(id, null, rawAudio))
          }}
        >
          <input aria-label="Room id or link" value={joinId} onChange={(e) => setJoinId(e.target.value)} placeholder="Room id or link" />
          <button type="submit">Join</button>
        </form>
      </section>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </main>
  )
}
