import Testing
@testable import Tunnel

/// The supervisor <-> holder protocol: every message survives encode and
/// decode, and what is not a message is refused, not misread.
@Suite struct HolderProtocolTests {
    static let statuses: [HolderStatus] = [
        .namespacesCreated, .namespaces(.admin), .namespaces(.job), .jobStarted,
        .jobExited(0), .jobExited(130), .jobExited(-1),
        .commandFailed(127, "nosuch: command not found"), .commandFailed(126, ""),
        .setupFailed("cannot create the user namespace: Operation not permitted"), .setupFailed(""),
        .tunDevice("wg0", 0), .tunDevice("wg1", 0x8000_0067),
    ]

    @Test(arguments: statuses)
    func statusRoundTrips(_ message: HolderStatus) {
        let line = message.line
        #expect(line.hasSuffix("\n"))
        #expect(line.dropLast().contains("\n") == false)
        #expect(HolderStatus(line: String(line.dropLast())) == message)
    }

    @Test func statusTextIsOneLine() {
        let m = HolderStatus.setupFailed("first\nsecond")
        #expect(m.line == "E first second\n")
        #expect(HolderStatus(line: String(m.line.dropLast())) == .setupFailed("first second"))
    }

    @Test(arguments: ["", "Q", "N extra", "R 1", "X", "X two", "F", "F other", "C", "C x message", "T", "T wg0", "T wg0 x", "T wg0 1 2"])
    func statusRefusesWhatIsNotAMessage(_ line: String) {
        #expect(HolderStatus(line: line) == nil)
    }

    @Test func controlRoundTripsOneByteAtATime() {
        let messages: [HolderControl] = [.carrierReady, .signal(15), .signal(2), .carrierReady, .signal(64)]
        let wire = messages.flatMap(\.bytes)
        var buffer: [UInt8] = []
        var got: [HolderControl] = []
        for b in wire {
            buffer.append(b)
            while let m = HolderControl.take(from: &buffer) { got.append(m) }
        }
        #expect(got == messages)
        #expect(buffer.isEmpty)
    }

    @Test func controlWaitsForTheSignalByteAndSkipsNoise() {
        var buffer: [UInt8] = [UInt8(ascii: "S")]
        #expect(HolderControl.take(from: &buffer) == nil)
        #expect(buffer == [UInt8(ascii: "S")])
        buffer = [0, UInt8(ascii: "x")] + HolderControl.signal(9).bytes
        #expect(HolderControl.take(from: &buffer) == .signal(9))
        #expect(buffer.isEmpty)
    }
}
