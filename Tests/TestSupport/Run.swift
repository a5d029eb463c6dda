import Foundation

/// What a finished child process left: its exit status and its output.
public struct RunResult: Sendable {
    /// Exit status, or 128+signal when killed by a signal.
    public var status: Int32
    /// Everything written to stdout.
    public var stdout: String
    /// Everything written to stderr.
    public var stderr: String
}

/// Runs `executable` with `arguments`, feeding `stdin`, and waits for it.
/// Output is read through files, so a chatty child never blocks on a pipe.
public func run(_ executable: String, _ arguments: [String] = [], stdin: String = "",
                environment: [String: String]? = nil) throws -> RunResult {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wgns-run-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let inURL = dir.appendingPathComponent("in"), outURL = dir.appendingPathComponent("out"),
        errURL = dir.appendingPathComponent("err")
    try Data(stdin.utf8).write(to: inURL)
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    if let environment { p.environment = environment }
    p.standardInput = try FileHandle(forReadingFrom: inURL)
    p.standardOutput = try FileHandle(forWritingTo: outURL)
    p.standardError = try FileHandle(forWritingTo: errURL)
    try p.run()
    p.waitUntilExit()
    let status = p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
    return RunResult(status: status,
                     stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
                     stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
}

/// Runs a shell script with `/bin/sh -c`.
public func shell(_ script: String, stdin: String = "") throws -> RunResult {
    try run("/bin/sh", ["-c", script], stdin: stdin)
}

/// The `wgns` binary the tests run: `$WGNS_BIN` when set (scripts/test.sh
/// sets it to the static release binary of scripts/build-static.sh, the one
/// users install), else the one built next to the test bundle (same build
/// folder, so a plain `swift test` runs the debug build).
public var wgnsBinary: String {
    if let bin = ProcessInfo.processInfo.environment["WGNS_BIN"], !bin.isEmpty { return bin }
    return builtProduct("wgns")
}

/// An executable of this package built next to the test bundle (same build
/// folder): `wgns`, or a test helper such as `wgns-rtnl`.
public func builtProduct(_ name: String) -> String {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
    // The test bundle may sit inside a .xctest folder.
    while dir.path != "/" && !FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent(name).path) {
        dir = dir.deletingLastPathComponent()
    }
    return dir.appendingPathComponent(name).path
}

/// The package's root folder (where Package.swift is).
public let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url = url.deletingLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
    }
    return FileManager.default.currentDirectoryPath
}()

/// Full path of a program on PATH, or nil.
public func which(_ name: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(separator: ":") {
        let p = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return nil
}
