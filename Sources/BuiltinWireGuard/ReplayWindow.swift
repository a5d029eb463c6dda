/// The receive counter's sliding window, with the kernel's `counter.c`
/// semantics: 8192 bits kept in 128 words of 64, of which one word is the
/// one being recycled, so counters up to 8192 − 64 behind the greatest seen
/// are still accepted once each; anything older, seen before, or at or past
/// `REJECT_AFTER_MESSAGES` is refused. Updated only for packets that
/// already authenticated.
struct ReplayWindow {
    /// Bits in the window, including the recycled word.
    static let totalBits: UInt64 = 8192
    static let wordBits: UInt64 = 64
    static let words = Int(totalBits / wordBits)
    /// How far behind the greatest counter a packet may still be.
    static let windowSize: UInt64 = totalBits - wordBits

    /// One more than the greatest counter accepted (0: none yet).
    private(set) var greatest: UInt64 = 0
    private var bitmap = [UInt64](repeating: 0, count: ReplayWindow.words)

    /// Accepts `counter` once: true when it is new and inside the window
    /// (and the window moves), false for replays, too old and too late.
    mutating func validate(_ counter: UInt64) -> Bool {
        guard greatest < Timing.rejectAfterMessages + 1, counter < Timing.rejectAfterMessages else { return false }
        let theirs = counter + 1
        if theirs + Self.windowSize < greatest { return false }
        var index = theirs / Self.wordBits
        if theirs > greatest {
            let current = greatest / Self.wordBits
            let top = min(index - current, UInt64(Self.words))
            if top > 0 {
                for i in 1...top {
                    bitmap[Int((i + current) & UInt64(Self.words - 1))] = 0
                }
            }
            greatest = theirs
        }
        index &= UInt64(Self.words - 1)
        let bit: UInt64 = 1 << (theirs & (Self.wordBits - 1))
        let word = Int(index)
        if bitmap[word] & bit != 0 { return false }
        bitmap[word] |= bit
        return true
    }
}
