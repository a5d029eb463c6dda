import Tunnel
#if canImport(Glibc)
import Glibc
#endif

enum DoctorCommand {
    static let command = Command(
        name: "doctor",
        abstract: "Check what `wgns up` needs on this machine and say how to fix what is missing.") { _ in try run() }

    static func run() throws {
        let findings = Doctor.run(probeUserNamespace: probeInFreshProcess)
        var out = Output()
        for f in findings {
            out.add("\(f.status.rawValue.padding(4)) \(f.what): \(f.detail)\n")
            if let fix = f.fix, f.status != .ok { out.add("     fix: \(fix)\n") }
        }
        try out.flush()
        if findings.contains(where: { $0.status == .fail }) { exit(1) }
    }

    /// Runs `wgns _probe-userns` (a fresh, single-threaded process) and
    /// returns nil if it could create a user namespace, else why not.
    static func probeInFreshProcess() -> String? {
        var exe = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &exe, exe.count - 1)
        guard n > 0 else { return "cannot find the wgns binary" }
        let path = String(decoding: exe[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let (line, status) = Doctor.firstLine(of: [path, "_probe-userns"])
        return status == 0 ? nil : (line.isEmpty ? "probe failed" : line)
    }
}

/// Hidden: tries to create a user + network namespace, first thing.
enum ProbeUserNamespace {
    static let command = Command(name: "_probe-userns", abstract: "Try to create a user namespace (for doctor).", hidden: true) { _ in
        let err = Doctor.probeUserNamespaceHere()
        if err != 0 {
            try Output.write(String(cString: strerror(err)) + "\n")
            exit(1)
        }
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
