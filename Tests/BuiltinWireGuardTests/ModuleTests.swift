import Testing
@testable import BuiltinWireGuard

@Test func identifierIsTheWhitepapers() {
    #expect(BuiltinWireGuard.identifier.utf8.count == 34)
}
