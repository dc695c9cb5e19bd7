// Links in chat messages (#18).

/** Text split into plain runs and links (http and https only: a chat message never carries
 * a javascript: or data: link). Trailing punctuation stays out of the link. */
export function linkify(text: string): { text: string; href?: string }[] {
  const out: { text: string; href?: string }[] = []
  const re = /\bhttps?:\/\/[^\s<>"]+/gi
  let last = 0
  for (const m of text.matchAll(re)) {
    let url = m[0]
    const trail = /[.,;:!?)\]'}]+$/.exec(url)
    if (trail) url = url.slice(0, -trail[0].length)
    const start = m.index ?? 0
    if (start > last) out.push({ text: text.slice(last, start) })
    out.push({ text: url, href: url })
    last = start + url.length
  }
  if (last < text.length) out.push({ text: text.slice(last) })
  return out
}
