import ArgumentParser
import Tunnel
#if canImport(Glibc)
import Glibc
#endif

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check what `wgns up` needs on this machine and say how to fix what is missing.")

    func run() throws {
        let findings = Doctor.run(probeUserNamespace: probeInFreshProcess)
        for f in findings {
            print("\(f.status.rawValue.padding(4)) \(f.what): \(f.detail)")
            if let fix = f.fix, f.status != .ok { print("     fix: \(fix)") }
        }
        if findings.contains(where: { $0.status == .fail }) { throw ExitCode(1) }
    }

    /// Runs `wgns _probe-userns` (a fresh, single-threaded process) and
    /// returns nil if it could create a user namespace, else why not.
    func probeInFreshProcess() -> String? {
        var exe = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &exe, exe.count - 1)
        guard n > 0 else { return "cannot find the wgns binary" }
        let path = String(decoding: exe[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let (line, status) = Doctor.firstLine(of: [path, "_probe-userns"])
        return status == 0 ? nil : (line.isEmpty ? "probe failed" : line)
    }
}

/// Hidden: tries to create a user + network namespace, first thing.
struct ProbeUserNamespace: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "_probe-userns", shouldDisplay: false)
    func run() throws {
        let err = Doctor.probeUserNamespaceHere()
        if err != 0 {
            print(String(cString: strerror(err)))
            throw ExitCode(1)
        }
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
