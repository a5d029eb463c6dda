// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "wgns",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "wgns", targets: ["wgns"]),
        .library(name: "KeyStore", targets: ["KeyStore"]),
        .library(name: "WGNetlink", targets: ["WGNetlink"]),
        .library(name: "Tunnel", targets: ["Tunnel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
    ],
    targets: [
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium",
                       providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CLibMnl", pkgConfig: "libmnl",
                       providers: [.apt(["libmnl-dev"])]),
        .systemLibrary(name: "CBlake2", pkgConfig: "libb2",
                       providers: [.apt(["libb2-dev"])]),
        // Only what Swift cannot import: function-like netlink macros and
        // the _GNU_SOURCE namespace calls.
        .target(name: "CWGShim"),
        // The one POSIX layer: EINTR-retrying calls, an owned descriptor, Errno.
        .target(name: "POSIX", dependencies: [.product(name: "SystemPackage", package: "swift-system")]),
        .target(name: "KeyStore",
                dependencies: ["CSodium", "POSIX", .product(name: "SystemPackage", package: "swift-system")]),
        .target(name: "WGNetlink",
                dependencies: ["KeyStore", "CLibMnl", "POSIX",
                               .product(name: "SystemPackage", package: "swift-system")]),
        // The built-in WireGuard data plane (protocol and packet I/O).
        .target(name: "BuiltinWireGuard",
                dependencies: ["KeyStore", "WGNetlink", "CSodium", "CBlake2", "CWGShim", "POSIX",
                               .product(name: "SystemPackage", package: "swift-system")]),
        .target(name: "Tunnel",
                dependencies: ["KeyStore", "WGNetlink", "BuiltinWireGuard", "CWGShim", "POSIX",
                               .product(name: "SystemPackage", package: "swift-system")]),
        .executableTarget(name: "wgns",
                          dependencies: ["KeyStore", "WGNetlink", "Tunnel", "POSIX"]),
        // A test helper, not a product: rtnetlink steps for RouteNetlinkTests.
        .executableTarget(name: "wgns-rtnl", dependencies: ["WGNetlink"], path: "Tests/RouteNetlinkSteps"),
        // Helpers shared by the test targets: running processes, finding the binary.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "KeyStoreTests", dependencies: ["KeyStore", "TestSupport"]),
        .testTarget(name: "WGNetlinkTests", dependencies: ["WGNetlink", "KeyStore", "TestSupport"]),
        .testTarget(name: "BuiltinWireGuardTests", dependencies: ["BuiltinWireGuard", "KeyStore", "WGNetlink", "TestSupport"]),
        .testTarget(name: "TunnelTests", dependencies: ["Tunnel", "KeyStore", "WGNetlink", "TestSupport"]),
        .testTarget(name: "wgnsTests", dependencies: ["Tunnel", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
