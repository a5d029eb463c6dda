/// Reusable memory for a batch of packets: `capacity` slots of `slotSize`
/// bytes, allocated once. Packet `i` starts `headroom` bytes into slot `i`,
/// so that a caller can prepend a header (WireGuard's 16-byte data header)
/// and append a trailer in place. Nothing is allocated per packet.
///
/// Not thread-safe: one thread uses a batch at a time (it may be handed
/// from thread to thread, hence `@unchecked Sendable`).
public final class PacketBatch: @unchecked Sendable {
    /// How many packets the batch holds.
    public let capacity: Int
    /// Bytes per slot, headroom included.
    public let slotSize: Int
    /// Bytes left free before each packet.
    public let headroom: Int
    /// How many slots hold packets (slots `0..<count`).
    public private(set) var count = 0

    private let memory: UnsafeMutableRawPointer
    private let lengths: UnsafeMutablePointer<Int>

    /// Allocates `capacity` slots of `slotSize` bytes, each packet starting
    /// `headroom` bytes in. Slots are 64-byte aligned when `slotSize` is a
    /// multiple of 64.
    public init(capacity: Int, slotSize: Int, headroom: Int = 0) {
        precondition(capacity > 0 && headroom >= 0 && slotSize > headroom, "PacketBatch: bad geometry")
        self.capacity = capacity
        self.slotSize = slotSize
        self.headroom = headroom
        memory = .allocate(byteCount: capacity * slotSize, alignment: 64)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: capacity * slotSize)
        lengths = .allocate(capacity: capacity)
        lengths.initialize(repeating: 0, count: capacity)
    }

    deinit {
        memory.deallocate()
        lengths.deallocate()
    }

    /// The most bytes a packet can have in a slot (`slotSize - headroom`).
    public var maxPacketSize: Int { slotSize - headroom }

    /// Packet `i`'s bytes (`i < count`); valid until the batch is reused.
    @inlinable
    public func packet(_ i: Int) -> UnsafeMutableRawBufferPointer {
        precondition(i >= 0 && i < count, "PacketBatch: index out of range")
        return UnsafeMutableRawBufferPointer(start: packetStart(i), count: length(i))
    }

    /// All of slot `i` (`i < capacity`), headroom included.
    public func slot(_ i: Int) -> UnsafeMutableRawBufferPointer {
        precondition(i >= 0 && i < capacity, "PacketBatch: index out of range")
        return UnsafeMutableRawBufferPointer(start: memory + i * slotSize, count: slotSize)
    }

    /// Where packet `i` starts (`headroom` bytes into slot `i`).
    @usableFromInline
    func packetStart(_ i: Int) -> UnsafeMutableRawPointer { memory + i * slotSize + headroom }

    /// Packet `i`'s length.
    @usableFromInline
    func length(_ i: Int) -> Int { lengths[i] }

    /// Forgets every packet (the memory stays for the next round).
    public func removeAll() { count = 0 }

    /// Appends a packet by copying `bytes` into the next slot; returns false
    /// (appending nothing) when the batch is full or the packet too big.
    @discardableResult
    public func append(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard count < capacity, bytes.count <= maxPacketSize else { return false }
        if let base = bytes.baseAddress { packetStart(count).copyMemory(from: base, byteCount: bytes.count) }
        lengths[count] = bytes.count
        count += 1
        return true
    }

    /// Sets the length of slot `i`, which becomes the last packet
    /// (`count = i + 1`): for code that writes into `slot(i)` directly.
    public func commit(slot i: Int, length: Int) {
        precondition(i >= 0 && i < capacity && length >= 0 && length <= maxPacketSize, "PacketBatch: bad commit")
        lengths[i] = length
        count = i + 1
    }

    /// Changes packet `i`'s length in place (after a trailer was added, say).
    public func setLength(_ i: Int, _ length: Int) {
        precondition(i >= 0 && i < count && length >= 0 && length <= maxPacketSize, "PacketBatch: bad length")
        lengths[i] = length
    }
}
