// The local userId: random, kept in sessionStorage so a reload or a reconnect rejoins as the
// same participant (each tab has its own).
const KEY = 'sfu.userId'
const NAME_KEY = 'sfu.userName'

export function randomId(len = 12): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'
  const bytes = new Uint8Array(len)
  crypto.getRandomValues(bytes)
  let out = ''
  for (const b of bytes) out += alphabet[b % alphabet.length]
  return out
}

export function getUserId(storage: Pick<Storage, 'getItem' | 'setItem'> | null = safeSession()): string {
  const existing = storage?.getItem(KEY)
  if (existing && /^[A-Za-z0-9_-]{1,64}$/.test(existing)) return existing
  const id = `u-${randomId()}`
  storage?.setItem(KEY, id)
  return id
}

export function rememberedName(): string {
  try {
    return localStorage.getItem(NAME_KEY) ?? ''
  } catch {
    return ''
  }
}

export function rememberName(name: string): void {
  try {
    localStorage.setItem(NAME_KEY, name)
  } catch {
    /* private mode */
  }
}

function safeSession(): Storage | null {
  try {
    return sessionStorage
  } catch {
    return null
  }
}
