import CWGShim
import POSIX
import SystemPackage
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// The named tunnel's server, in the supervisor: the namespaces it was
/// passed, and the requests of `wgns show/exec/down NAME`.
extension NamedTunnel {
    /// Descriptors of a tunnel's namespaces, as the supervisor holds them
    /// for `wgns show NAME` and `wgns exec NAME`.
    public struct Namespaces {
        /// The tunnel's user, mnt and net namespaces.
        var admin: [Int32] = []
        /// The job sandbox's user, mnt, net and pid namespaces.
        var job: [Int32] = []
        /// The job's ids there, for `exec`'s reply.
        var uid: UInt32 = 0
        var gid: UInt32 = 0

        /// Takes the descriptors of an `F` message.
        mutating func take(_ group: HolderStatus.NamespaceGroup, _ fds: [Int32]) {
            switch (group, fds.count) {
            case (.admin, 3): admin.forEach { Glibc.close($0) }; admin = fds
            case (.job, 4): job.forEach { Glibc.close($0) }; job = fds
            default: fds.forEach { Glibc.close($0) }
            }
        }

        /// Closes every descriptor held.
        mutating func close() {
            (admin + job).forEach { Glibc.close($0) }
            admin = []
            job = []
        }
    }

    /// What a served request asks of the supervisor.
    enum Served: Equatable {
        case handled, down
        /// `devices`: the builtin data planes' devices, which only the
        /// supervisor can ask for, go out on this connection.
        case devices(Int32)
    }

    /// The supervisor's side: requests answered as soon as the holder has
    /// passed the namespaces they need; until then they wait here (a client
    /// that runs `wgns exec NAME` right after `up --name NAME` waits for the
    /// sandbox rather than failing).
    struct Server {
        var namespaces = Namespaces()
        /// Connections whose request waits for the namespaces.
        var waiting: [(conn: Int32, request: String)] = []

        /// Accepts every connection waiting on `listenFD` (non-blocking) and
        /// answers each, or keeps it waiting. A peer of another uid is closed
        /// at once, unread: a neighbour's connect flood keeps the backlog
        /// busy only as long as it keeps connecting, and is drained in one go.
        /// Returns whether one asked for `down`, and the connections of the
        /// `devices` requests, which the supervisor answers.
        mutating func serve(_ listenFD: Int32) -> (down: Bool, devices: [Int32]) {
            var down = false
            var devices: [Int32] = []
            for _ in 0..<4096 {
                let conn = accept(listenFD, nil, nil)
                guard conn >= 0 else { break }
                _ = fcntl(conn, F_SETFD, FD_CLOEXEC)
                guard peerIsUs(conn) else { Glibc.close(conn); continue }
                switch serveOne(conn) {
                case .down: down = true
                case .devices(let c): devices.append(c)
                case .handled: break
                }
            }
            return (down, devices)
        }

        /// Reads the request of one of our own clients and answers it.
        mutating func serveOne(_ conn: Int32) -> Served {
            var request: String?
            var tv = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var line = LineReader()
            while request == nil, (try? line.fill(from: conn)) == true { request = line.nextLine() }
            switch request {
            case "admin", "exec":
                if !answer(conn, request!) { waiting.append((conn, request!)) }
                return .handled
            case "devices":
                return .devices(conn)
            case "down":
                // Left open: it closes when this process exits, which is the reply.
                return .down
            default:
                Glibc.close(conn)
                return .handled
            }
        }

        /// Answers `request` on `conn` and closes it if the namespaces it
        /// needs are here; false (and nothing sent) if not yet.
        func answer(_ conn: Int32, _ request: String) -> Bool {
            switch request {
            case "admin" where namespaces.admin.count == 3:
                _ = CWGShim_send_fds(conn, "ok\n", namespaces.admin, 3)
            case "exec" where namespaces.admin.count == 3 && namespaces.job.count == 4:
                let fds = [namespaces.admin[0]] + namespaces.job
                _ = CWGShim_send_fds(conn, "ok \(namespaces.uid) \(namespaces.gid)\n", fds, Int32(fds.count))
            default:
                return false
            }
            Glibc.close(conn)
            return true
        }

        /// Takes the descriptors of an `F` message and answers what waited for them.
        mutating func take(_ group: HolderStatus.NamespaceGroup, _ fds: [Int32]) {
            namespaces.take(group, fds)
            let pending = waiting
            waiting = pending.filter { !answer($0.conn, $0.request) }
        }

        /// The tunnel ends: what still waits is told so; descriptors close.
        mutating func close() {
            for w in waiting {
                _ = CWGShim_send_fds(w.conn, "not ready: the tunnel ended before its namespaces were up\n", nil, 0)
                Glibc.close(w.conn)
            }
            waiting = []
            namespaces.close()
        }
    }
}
