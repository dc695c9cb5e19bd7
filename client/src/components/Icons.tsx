// Small inline icons (no icon font, no emoji font needed).
const common = { width: 16, height: 16, viewBox: '0 0 24 24', fill: 'none', stroke: 'currentColor', strokeWidth: 2, strokeLinecap: 'round' as const, strokeLinejoin: 'round' as const, 'aria-hidden': true }

export function MicIcon({ off, size = 16 }: { off?: boolean; size?: number }) {
  return (
    <svg {...common} width={size} height={size}>
      <rect x="9" y="2" width="6" height="12" rx="3" />
      <path d="M5 10a7 7 0 0 0 14 0M12 17v4M8 21h8" />
      {off && <path d="M3 3l18 18" stroke="#ff6b6b" />}
    </svg>
  )
}

export function CameraIcon({ off, size = 16 }: { off?: boolean; size?: number }) {
  return (
    <svg {...common} width={size} height={size}>
      <rect x="2" y="6" width="14" height="12" rx="2" />
      <path d="M16 10l6-3v10l-6-3z" />
      {off && <path d="M3 3l18 18" stroke="#ff6b6b" />}
    </svg>
  )
}

export function ScreenIcon({ size = 16 }: { size?: number }) {
  return (
    <svg {...common} width={size} height={size}>
      <rect x="2" y="4" width="20" height="13" rx="2" />
      <path d="M8 21h8M12 17v4" />
    </svg>
  )
}

// The toolbar's icons (#18): 20 px, drawn with the text colour.
const tool = { ...common, width: 20, height: 20 }

export function HandIcon() {
  return (
    <svg {...tool}>
      <path d="M7 11V5a1.5 1.5 0 0 1 3 0v5M10 10V3.5a1.5 1.5 0 0 1 3 0V10M13 10V4.5a1.5 1.5 0 0 1 3 0V11M16 11V7.5a1.5 1.5 0 0 1 3 0V14a7 7 0 0 1-7 7h-.5a6.5 6.5 0 0 1-5.4-2.9L3.5 14a1.6 1.6 0 0 1 2.6-1.8L7 13.5" />
    </svg>
  )
}

export function LayoutIcon({ speaker }: { speaker?: boolean }) {
  return speaker ? (
    <svg {...tool}>
      <rect x="3" y="3" width="18" height="12" rx="1.5" />
      <rect x="3" y="17" width="5" height="4" rx="1" />
      <rect x="9.5" y="17" width="5" height="4" rx="1" />
      <rect x="16" y="17" width="5" height="4" rx="1" />
    </svg>
  ) : (
    <svg {...tool}>
      <rect x="3" y="3" width="8" height="8" rx="1.5" />
      <rect x="13" y="3" width="8" height="8" rx="1.5" />
      <rect x="3" y="13" width="8" height="8" rx="1.5" />
      <rect x="13" y="13" width="8" height="8" rx="1.5" />
    </svg>
  )
}

export function SmileIcon() {
  return (
    <svg {...tool}>
      <circle cx="12" cy="12" r="9" />
      <path d="M8 14a5 5 0 0 0 8 0M9 9.5h.01M15 9.5h.01" />
    </svg>
  )
}

export function ChatIcon() {
  return (
    <svg {...tool}>
      <path d="M21 12a8 8 0 0 1-11.6 7.1L4 20.5l1.4-4.6A8 8 0 1 1 21 12z" />
    </svg>
  )
}

export function PeopleIcon() {
  return (
    <svg {...tool}>
      <circle cx="9" cy="8" r="3.5" />
      <path d="M2.5 20a6.5 6.5 0 0 1 13 0M16 4.6a3.5 3.5 0 0 1 0 6.8M18 14.5a6.5 6.5 0 0 1 3.5 5.5" />
    </svg>
  )
}

export function GearIcon() {
  return (
    <svg {...tool}>
      <circle cx="12" cy="12" r="3" />
      <path d="M19.4 15a1.7 1.7 0 0 0 .3 1.8l.1.1a2 2 0 1 1-2.8 2.8l-.1-.1a1.7 1.7 0 0 0-1.8-.3 1.7 1.7 0 0 0-1 1.5V21a2 2 0 1 1-4 0v-.1a1.7 1.7 0 0 0-1.1-1.5 1.7 1.7 0 0 0-1.8.3l-.1.1a2 2 0 1 1-2.8-2.8l.1-.1a1.7 1.7 0 0 0 .3-1.8 1.7 1.7 0 0 0-1.5-1H3a2 2 0 1 1 0-4h.1a1.7 1.7 0 0 0 1.5-1.1 1.7 1.7 0 0 0-.3-1.8l-.1-.1a2 2 0 1 1 2.8-2.8l.1.1a1.7 1.7 0 0 0 1.8.3H9a1.7 1.7 0 0 0 1-1.5V3a2 2 0 1 1 4 0v.1a1.7 1.7 0 0 0 1 1.5 1.7 1.7 0 0 0 1.8-.3l.1-.1a2 2 0 1 1 2.8 2.8l-.1.1a1.7 1.7 0 0 0-.3 1.8V9a1.7 1.7 0 0 0 1.5 1H21a2 2 0 1 1 0 4h-.1a1.7 1.7 0 0 0-1.5 1z" />
    </svg>
  )
}

/** Recording: a filled dot in a ring; ``stop``: a square. */
export function RecordIcon({ stop }: { stop?: boolean }) {
  return (
    <svg {...tool}>
      <circle cx="12" cy="12" r="9" />
      {stop ? <rect x="9" y="9" width="6" height="6" fill="currentColor" /> : <circle cx="12" cy="12" r="4" fill="currentColor" />}
    </svg>
  )
}

/** Recording on this computer: a laptop with a dot. */
export function LocalRecordIcon({ stop }: { stop?: boolean }) {
  return (
    <svg {...tool}>
      <rect x="4" y="4" width="16" height="11" rx="1.5" />
      <path d="M2 19h20" />
      {stop ? <rect x="10" y="7.5" width="4" height="4" fill="currentColor" /> : <circle cx="12" cy="9.5" r="2.2" fill="currentColor" />}
    </svg>
  )
}

export function MoreIcon() {
  return (
    <svg {...tool}>
      <circle cx="5" cy="12" r="1.2" fill="currentColor" />
      <circle cx="12" cy="12" r="1.2" fill="currentColor" />
      <circle cx="19" cy="12" r="1.2" fill="currentColor" />
    </svg>
  )
}

/** Leave: a telephone receiver put down. */
export function LeaveIcon() {
  return (
    <svg {...tool}>
      <path d="M3.3 14.6l-.9-1.9a1.5 1.5 0 0 1 .5-1.8C5.6 9 8.7 8 12 8s6.4 1 9.1 2.9a1.5 1.5 0 0 1 .5 1.8l-.9 1.9a1.5 1.5 0 0 1-1.9.8l-2.6-1a1.5 1.5 0 0 1-.9-1.3l-.1-1.5a11 11 0 0 0-6.4 0l-.1 1.5a1.5 1.5 0 0 1-.9 1.3l-2.6 1a1.5 1.5 0 0 1-1.9-.8z" />
    </svg>
  )
}

export function KeyboardIcon() {
  return (
    <svg {...common}>
      <rect x="2" y="6" width="20" height="12" rx="2" />
      <path d="M6 10h.01M10 10h.01M14 10h.01M18 10h.01M7 14h10" />
    </svg>
  )
}
