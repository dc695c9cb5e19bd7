import { useState } from 'react'
import { rememberName, rememberedName } from '../lib/identity'
import { cleanName, extractRoomId, roomPath } from '../lib/url'
import type { RoomMode } from '../services/protocol'
import { navigate } from '../router'

async function createRoom(mode: RoomMode): Promise<{ roomId: string; mode: RoomMode }> {
  const res = await fetch('/api/rooms', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ mode }),
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

  const validName = (): string | null => {
    const n = cleanName(name)
    if (!n) setError('Please enter your name (up to 64 characters).')
    else rememberName(n)
    return n
  }

  return (
    <main className="page home">
      <h1>Meetings</h1>
      <p className="muted">Video meetings in the browser: peer-to-peer for small groups, or through the server (SFU).</p>
      <label className="field">
        Your name
        <input aria-label="Your name" value={name} maxLength={64} onChange={(e) => setName(e.target.value)} placeholder="e.g. Ada" />
      </label>

      <section className="card">
        <h2>New meeting</h2>
        <fieldset className="mode-choice">
          <legend>Mode</legend>
          <label>
            <input type="radio" name="mode" value="p2p" checked={mode === 'p2p'} onChange={() => setMode('p2p')} />
            P2P <span className="muted small">(direct between browsers, best for 2–4 people)</span>
          </label>
          <label>
            <input type="radio" name="mode" value="sfu" checked={mode === 'sfu'} onChange={() => setMode('sfu')} />
            SFU <span className="muted small">(media through the server, for larger groups)</span>
          </label>
        </fieldset>
        <button
          type="button"
          disabled={busy}
          onClick={async () => {
            setError(null)
            const n = validName()
            if (!n) return
            setBusy(true)
            try {
              const room = await createRoom(mode)
              navigate(roomPath(room.roomId, n, rawAudio))
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
            navigate(roomPath(id, n, rawAudio))
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
