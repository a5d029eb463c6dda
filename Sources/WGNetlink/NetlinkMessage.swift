import CLibMnl
#if canImport(Glibc)
import Glibc
#endif

/// A buffer that one netlink request is built in, in place, with libmnl's
/// `mnl_nlmsg_*` / `mnl_attr_*` calls. One owner; reused for every message
/// a request needs, so that building costs no allocation per attribute.
final class MessageBuffer {
    /// The whole allocation.
    let storage: UnsafeMutableRawPointer
    /// Bytes a message may grow to; the `_check` puts refuse to pass it.
    let capacity: Int
    /// The message being built (at the start of `storage`).
    var header: UnsafeMutablePointer<nlmsghdr>

    /// Allocates `capacity` bytes and starts an empty message.
    init(capacity: Int) {
        self.capacity = capacity
        storage = .allocate(byteCount: capacity, alignment: 8)
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: capacity)
        header = mnl_nlmsg_put_header(storage)!
    }

    deinit {
        // Requests carry private and preshared keys: wipe before freeing.
        memset(storage, 0, capacity)
        storage.deallocate()
    }

    /// Starts a fresh message (`mnl_nlmsg_put_header`) of `type` with `flags`.
    func start(type: UInt16, flags: Int32) {
        memset(storage, 0, min(capacity, Int(header.pointee.nlmsg_len) + 64))
        header = mnl_nlmsg_put_header(storage)!
        header.pointee.nlmsg_type = type
        header.pointee.nlmsg_flags = UInt16(truncatingIfNeeded: flags)
    }

    /// Appends a zeroed fixed header such as `ifinfomsg` (`mnl_nlmsg_put_extra_header`).
    func extraHeader<T>(_ type: T.Type) -> UnsafeMutablePointer<T> {
        mnl_nlmsg_put_extra_header(header, MemoryLayout<T>.size).assumingMemoryBound(to: T.self)
    }

    /// Current length of the message.
    var length: Int { Int(header.pointee.nlmsg_len) }

    /// The message as bytes.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: storage, count: length) }

    // MARK: Attributes (each wraps one `mnl_attr_put*_check`; false when full).

    /// Puts raw bytes (`mnl_attr_put_check`).
    @discardableResult
    func put(_ type: some BinaryInteger, _ data: UnsafeRawBufferPointer) -> Bool {
        mnl_attr_put_check(header, capacity, UInt16(type), data.count, data.baseAddress)
    }

    /// Puts a fixed-size value's bytes.
    @discardableResult
    func put<T>(_ type: some BinaryInteger, value: T) -> Bool {
        withUnsafeBytes(of: value) { put(type, $0) }
    }

    /// Puts a u8 (`mnl_attr_put_u8_check`).
    @discardableResult
    func put(_ type: some BinaryInteger, u8 v: UInt8) -> Bool { mnl_attr_put_u8_check(header, capacity, UInt16(type), v) }
    /// Puts a u16 (`mnl_attr_put_u16_check`).
    @discardableResult
    func put(_ type: some BinaryInteger, u16 v: UInt16) -> Bool { mnl_attr_put_u16_check(header, capacity, UInt16(type), v) }
    /// Puts a u32 (`mnl_attr_put_u32_check`).
    @discardableResult
    func put(_ type: some BinaryInteger, u32 v: UInt32) -> Bool { mnl_attr_put_u32_check(header, capacity, UInt16(type), v) }
    /// Puts a NUL-terminated string (`mnl_attr_put_strz_check`).
    @discardableResult
    func put(_ type: some BinaryInteger, string: String) -> Bool {
        string.withCString { mnl_attr_put_strz_check(header, capacity, UInt16(type), $0) }
    }

    /// Opens a nest (`mnl_attr_nest_start_check`); nil when full.
    func nestStart(_ type: some BinaryInteger) -> UnsafeMutablePointer<nlattr>? {
        mnl_attr_nest_start_check(header, capacity, UInt16(type))
    }
    /// Closes a nest (`mnl_attr_nest_end`).
    func nestEnd(_ nest: UnsafeMutablePointer<nlattr>) { mnl_attr_nest_end(header, nest) }
    /// Drops a nest and everything in it (`mnl_attr_nest_cancel`).
    func nestCancel(_ nest: UnsafeMutablePointer<nlattr>) { mnl_attr_nest_cancel(header, nest) }
}

/// One attribute read from a received message: its type (flags masked off)
/// and its payload. Valid only while the receive buffer is.
struct Attribute {
    /// `nla_type & NLA_TYPE_MASK`.
    let type: UInt16
    /// The payload, without padding.
    let payload: UnsafeRawBufferPointer

    /// The payload as a u8, u16, u32 or u64 in host order; 0 when too short.
    var u8: UInt8 { payload.count >= 1 ? payload.load(as: UInt8.self) : 0 }
    var u16: UInt16 { payload.count >= 2 ? payload.loadUnaligned(as: UInt16.self) : 0 }
    var u32: UInt32 { payload.count >= 4 ? payload.loadUnaligned(as: UInt32.self) : 0 }
    var u64: UInt64 { payload.count >= 8 ? payload.loadUnaligned(as: UInt64.self) : 0 }
    /// The payload as a string, up to its NUL.
    var string: String {
        let end = payload.firstIndex(of: 0) ?? payload.count
        return String(decoding: UnsafeRawBufferPointer(rebasing: payload[0..<end]), as: UTF8.self)
    }
    /// The attributes nested in this one.
    var nested: Attributes { Attributes(payload) }
}

/// The attributes in a byte range, walked with libmnl's `mnl_attr_ok` /
/// `mnl_attr_next`, stopping at the first malformed one.
struct Attributes: Sequence, IteratorProtocol {
    private var cursor: UnsafeRawPointer?
    private let end: UnsafeRawPointer?

    /// The attributes in `bytes`.
    init(_ bytes: UnsafeRawBufferPointer) {
        cursor = bytes.baseAddress
        end = bytes.baseAddress.map { $0 + bytes.count }
    }

    /// The attributes of `message` after a fixed header of `headerSize` bytes.
    init(message: UnsafePointer<nlmsghdr>, headerSize: Int) {
        let payload = UnsafeRawPointer(mnl_nlmsg_get_payload(message))!
        let tail = UnsafeRawPointer(mnl_nlmsg_get_payload_tail(message))!
        let start = payload + Int(netlinkAlign(headerSize))
        self.init(UnsafeRawBufferPointer(start: start, count: Swift.max(0, tail - start)))
    }

    mutating func next() -> Attribute? {
        guard let c = cursor, let end else { return nil }
        let attr = c.assumingMemoryBound(to: nlattr.self)
        guard mnl_attr_ok(attr, Int32(end - c)) else { cursor = nil; return nil }
        cursor = UnsafeRawPointer(mnl_attr_next(attr))
        let len = Int(mnl_attr_get_payload_len(attr))
        return Attribute(type: mnl_attr_get_type(attr),
                         payload: UnsafeRawBufferPointer(start: UnsafeRawPointer(mnl_attr_get_payload(attr)), count: len))
    }
}

/// NLMSG_ALIGN (4 bytes).
@inline(__always) func netlinkAlign(_ n: Int) -> Int { (n + 3) & ~3 }

/// The fixed header of a message (after `nlmsghdr`) as a `T`, if it is long enough.
func fixedHeader<T>(_ message: UnsafePointer<nlmsghdr>, _ type: T.Type) -> T? {
    guard Int(message.pointee.nlmsg_len) >= 16 + MemoryLayout<T>.size else { return nil }
    return UnsafeRawPointer(mnl_nlmsg_get_payload(message))!.loadUnaligned(as: T.self)
}
