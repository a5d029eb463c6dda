import POSIX
#if canImport(Glibc)
import Glibc
#endif

// The supervisor <-> holder protocol, beside the plan's wire format (UpPlan):
//
//   control pipe, supervisor -> holder (fd 3): the plan (UpPlan.encoded),
//     then single control messages (HolderControl);
//   status channel, holder -> supervisor (fd 4, SOCK_SEQPACKET): one line per
//     message (HolderStatus), `F` lines carrying namespace descriptors.
//
// Both sides encode and decode through these two enums only; nothing else
// spells a letter of the protocol.

/// What the holder (and pid 1 inside) tells the supervisor.
enum HolderStatus: Equatable, Sendable {
    /// The namespaces exist: start the carrier (`N`).
    case namespacesCreated
    /// Descriptors of a group of namespaces ride with this message (`F`).
    case namespaces(NamespaceGroup)
    /// The job has started (`R`).
    case jobStarted
    /// The job ended with this shell status (`X STATUS`).
    case jobExited(Int32)
    /// The job's command could not start (`C STATUS MESSAGE`): 127 not
    /// found, 126 not executable or no sandbox.
    case commandFailed(Int32, String)
    /// Setting up failed (`E MESSAGE`).
    case setupFailed(String)
    /// The TUN device of a builtin-backend interface rides with this
    /// message (`T NAME OFFLOADS`): its name and how it was opened
    /// (`TUNOffloads.rawValue`: vnet header, TUN_F_* bits).
    case tunDevice(String, UInt32)

    /// Which namespaces an `F` message carries.
    enum NamespaceGroup: String, Sendable {
        /// The tunnel's user, mnt and net namespaces (where wg0 is): what
        /// `wgns show NAME` enters.
        case admin
        /// The job sandbox's user, mnt, net and pid namespaces: what `wgns
        /// exec NAME` enters.
        case job
    }

    /// The message as one line with its newline; a message's own newlines
    /// become spaces.
    var line: String {
        func flat(_ s: String) -> String {
            s.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: " ")
        }
        switch self {
        case .namespacesCreated: return "N\n"
        case .namespaces(let g): return "F \(g.rawValue)\n"
        case .jobStarted: return "R\n"
        case .jobExited(let s): return "X \(s)\n"
        case .commandFailed(let s, let m): return "C \(s) \(flat(m))\n"
        case .setupFailed(let m): return "E \(flat(m))\n"
        case .tunDevice(let name, let offloads): return "T \(flat(name)) \(offloads)\n"
        }
    }

    /// Decodes one line (without its newline); nil for anything else.
    init?(line: String) {
        let kind = line.first
        let rest = String(line.dropFirst(min(2, line.count)))
        switch kind {
        case "N" where line.count == 1: self = .namespacesCreated
        case "F": guard let g = NamespaceGroup(rawValue: rest) else { return nil }; self = .namespaces(g)
        case "R" where line.count == 1: self = .jobStarted
        case "X": guard let s = Int32(rest) else { return nil }; self = .jobExited(s)
        case "C":
            let parts = rest.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            guard let s = Int32(parts[0]) else { return nil }
            self = .commandFailed(s, parts.count > 1 ? String(parts[1]) : "")
        case "E": self = .setupFailed(rest)
        case "T":
            let parts = rest.split(separator: " ")
            guard parts.count == 2, let offloads = UInt32(parts[1]) else { return nil }
            self = .tunDevice(String(parts[0]), offloads)
        default: return nil
        }
    }

    /// Sends the message on `fd` (one write: one SOCK_SEQPACKET message).
    func send(on fd: Int32) {
        let b = Array(line.utf8)
        b.withUnsafeBytes { _ = write(fd, $0.baseAddress, $0.count) }
    }
}

/// What the supervisor tells the holder's pid 1 after the plan.
enum HolderControl: Equatable, Sendable {
    /// The carrier is attached: configure the peers and start the job (`G`).
    case carrierReady
    /// Pass this signal to the job (`S` + one byte, the signal's number).
    case signal(Int32)

    /// The message's bytes.
    var bytes: [UInt8] {
        switch self {
        case .carrierReady: return [UInt8(ascii: "G")]
        case .signal(let s): return [UInt8(ascii: "S"), UInt8(truncatingIfNeeded: s)]
        }
    }

    /// Takes the first complete message off the front of `buffer`; nil when
    /// it holds none yet. Unknown bytes are dropped.
    static func take(from buffer: inout [UInt8]) -> HolderControl? {
        while let first = buffer.first {
            switch first {
            case UInt8(ascii: "G"):
                buffer.removeFirst()
                return .carrierReady
            case UInt8(ascii: "S"):
                guard buffer.count >= 2 else { return nil }
                let s = Int32(buffer[1])
                buffer.removeFirst(2)
                return .signal(s)
            default:
                buffer.removeFirst()
            }
        }
        return nil
    }
}

/// Reads `HolderControl` messages from the control pipe.
struct ControlReader {
    let fd: Int32
    var buffer: [UInt8] = []

    /// The next message, reading (blocking) as needed; nil when the
    /// supervisor has closed the pipe (it is gone, or it is ending us).
    mutating func next() -> HolderControl? {
        while true {
            if let m = HolderControl.take(from: &buffer) { return m }
            var chunk: [UInt8] = [0, 0]
            guard let n = try? valueOrErrno({ read(fd, &chunk, chunk.count) }), n > 0 else { return nil }
            buffer += chunk[..<n]
        }
    }
}
