import Tunnel
#if canImport(Glibc)
import Glibc
#endif

enum DoctorCommand {
    static let command = Command(
        name: "doctor",
        abstract: "Check what `wgns up` needs on this machine and say how to fix what is missing.",
        discussion: """
        Checks user and network namespaces (user.max_user_namespaces, user.max_net_namespaces, \
        kernel.unprivileged_userns_clone, Ubuntu's kernel.apparmor_restrict_unprivileged_userns, and a real try), \
        /dev/net/tun, the carriers (present, and new enough for every option wgns gives them), pasta's AppArmor \
        profile, and the WireGuard backends. Exits 0 when `wgns up` can work here, 1 when it cannot.
        """,
        options: [json]
    ) { a in try run(json: a.flag(json)) }

    static let json = Option.flag("json", "JSON: {\"ready\": BOOL, \"findings\": [{\"status\", \"what\", \"detail\", \"fix\"}]}.")

    static func run(json: Bool) throws {
        let findings = Doctor.run(probeUserNamespace: probeInFreshProcess)
        let ready = Doctor.ready(findings)
        var out = Output()
        if json {
            let items = findings.map { f in
                "{\"status\":\"\(f.status.rawValue)\",\"what\":\"\(jsonEscaped(f.what))\",\"detail\":\"\(jsonEscaped(f.detail))\","
                    + "\"fix\":" + (f.fix.map { "\"\(jsonEscaped($0))\"" } ?? "null") + "}"
            }
            out.add("{\"ready\":\(ready),\"findings\":[\(items.joined(separator: ","))]}\n")
        } else {
            for f in findings {
                out.add("\(f.status.rawValue.padding(4)) \(f.what): \(f.detail)\n")
                if let fix = f.fix, f.status != .ok { out.add("     fix: \(fix)\n") }
            }
            out.add(ready ? "wgns up can work here\n" : "wgns up cannot work here: fix each 'fail' above\n")
        }
        try out.flush()
        if !ready { exit(1) }
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
        if let why = Doctor.probeUserNamespaceHere() {
            try Output.write(why + "\n")
            exit(1)
        }
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
