import { describe, expect, it } from 'vitest'
import { cleanName, extractRoomId, parseRoute, roomPath, roomUrl } from '../src/lib/url'

describe('parseRoute', () => {
  it('home', () => {
    expect(parseRoute('/', '')).toEqual({ name: 'home' })
    expect(parseRoute('', '')).toEqual({ name: 'home' })
  })
  it('room without a name asks for one', () => {
    expect(parseRoute('/room/abc-123', '')).toEqual({ name: 'room', roomId: 'abc-123', userName: null, rawAudio: false })
  })
  it('room with name and raw_audio', () => {
    expect(parseRoute('/room/abc', '?name=Ann%20Lee&raw_audio=1')).toEqual({
      name: 'room',
      roomId: 'abc',
      userName: 'Ann Lee',
      rawAudio: true,
    })
    expect(parseRoute('/room/abc/', '?name=%20%20')).toMatchObject({ userName: null })
    expect(parseRoute('/room/abc', '?raw_audio=0')).toMatchObject({ rawAudio: false })
  })
  it('rejects bad ids and unknown paths', () => {
    expect(parseRoute('/room/a%20b', '').name).toBe('not-found')
    expect(parseRoute('/room/' + 'x'.repeat(65), '').name).toBe('not-found')
    expect(parseRoute('/room/%E0%A4%A', '').name).toBe('not-found')
    expect(parseRoute('/nope', '').name).toBe('not-found')
    expect(parseRoute('/room/a/b', '').name).toBe('not-found')
  })
})

describe('room links', () => {
  it('builds paths and shareable urls', () => {
    expect(roomPath('r1', 'Zoë & co')).toBe('/room/r1?name=Zo%C3%AB+%26+co')
    expect(roomPath('r1')).toBe('/room/r1')
    expect(roomPath('r1', null, true)).toBe('/room/r1?raw_audio=1')
    expect(roomUrl('http://127.0.0.1:5000', 'r1')).toBe('http://127.0.0.1:5000/room/r1')
  })
  it('extracts a room id from an id or a link', () => {
    expect(extractRoomId('  abc_1 ')).toBe('abc_1')
    expect(extractRoomId('http://host:5000/room/xyz?name=a')).toBe('xyz')
    expect(extractRoomId('http://host/other')).toBeNull()
    expect(extractRoomId('')).toBeNull()
    expect(extractRoomId('no spaces allowed')).toBeNull()
  })
  it('cleans names like the server', () => {
    expect(cleanName('  Ada ')).toBe('Ada')
    expect(cleanName('a\u0000b\nc')).toBe('abc')
    expect(cleanName('   ')).toBeNull()
    expect(cleanName('x'.repeat(65))).toBeNull()
    expect(cleanName('<b>x</b>')).toBe('<b>x</b>')
  })
})
