import BuiltinWireGuard
import CWGShim
import KeyStore
import POSIX
import WGNetlink
#if canImport(Glibc)
import Glibc
#endif

/// A running wireguard-go (the userspace backend) and the pipe its log
/// arrives on: started by pid 1 inside for each interface the kernel cannot
/// make, with its TUN device handed over, and read until its UAPI socket
/// listens.
struct WireGuardGo {
    var name: String
    var process: ChildProcess
    var log: Int32
    var reader = LineReader()
    var lastLine = ""

    static func start(_ path: String, name: String) throws(TunnelError) -> WireGuardGo {
        let logPipe = try Pipe()
        // Its verbose log is read only between steps; a hub of 1000 peers logs
        // ~200 KB while it is configured, and a full 64 KiB pipe blocked it
        // mid-reply (F_SETPIPE_SZ = 1031: 1 MiB, the default pipe-max-size).
        _ = fcntl(logPipe.write.raw, 1031, Int32(1 << 20))
        let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devnull) }
        // The TUN device is made here, persistent, with the flags this
        // wireguard-go expects, and handed over (WG_TUN_FD): its exit then
        // does not wait for the device's removal.
        let flavor = WireGuardGoTUN.of(path)
        let tun: Int32
        switch flavor {
        case .ownDevice: tun = -1
        case .offloads:
            do { tun = try TUNDevice.open(name: name, offloads: true).release() } catch {
                throw TunnelError(.setup, "create TUN device \(name): \(error.message)", errno: error.errno)
            }
            if CWGShim_tun_set_persist(tun, 1) != 0 {
                let e = currentErrno
                close(tun)
                throw TunnelError(.setup, "TUNSETPERSIST on \(name)", errno: e)
            }
        case .packetInformation, .noPacketInformation:
            tun = try sys("create TUN device \(name) (/dev/net/tun)", code: .setup) {
                CWGShim_tun_open_pi(name, 0, flavor == .noPacketInformation ? 1 : 0, 1)
            }
        }
        defer { if tun >= 0 { close(tun) } }
        var opts = SpawnOptions()
        opts.fds = [devnull, logPipe.write.raw, logPipe.write.raw] + (tun >= 0 ? [tun] : [])
        opts.deathSignal = SIGKILL
        var env: [String] = []
        var e = environ
        while let p = e.pointee {
            let s = String(cString: p)
            if !s.hasPrefix("WG_") && !s.hasPrefix("LOG_LEVEL=") { env.append(s) }
            e += 1
        }
        env += ["WG_PROCESS_FOREGROUND=1", "LOG_LEVEL=verbose"] + (tun >= 0 ? ["WG_TUN_FD=3"] : [])
        opts.environment = env
        let p: ChildProcess
        do { p = try ChildProcess.spawn([path, "-f", name], opts) } catch {
            throw TunnelError(.noWireGuard, "cannot start \(path)", errno: error.errno)
        }
        let fd = logPipe.read.release()
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        return WireGuardGo(name: name, process: p, log: fd)
    }

    /// Reads wireguard-go's log until its UAPI socket listens.
    mutating func waitReady() throws(TunnelError) {
        while true {
            while let line = reader.nextLine() {
                lastLine = line
                if line.contains("UAPI listener started") { return }
            }
            var p = pollfd(fd: log, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, -1)
            let more: Bool
            do { more = try reader.fill(from: log) } catch {
                if error.errno == .resourceTemporarilyUnavailable { continue }
                throw TunnelError(.setup, "wireguard-go for \(name)", wrapping: error)
            }
            if !more {
                let st = process.wait()
                throw TunnelError(.noWireGuard, "wireguard-go for \(name) failed (\(st)): \(lastLine)\(Doctor.wireguardGoHint(lastLine))")
            }
        }
    }
}
