import SystemPackage

/// An error from KeyStore: what was wrong, in words a person can act on.
///
/// Messages never contain key material.
public struct KeyStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is, for callers that match on it.
    public enum Code: Sendable, Hashable {
        /// The text is not a 44-character base64 WireGuard key.
        case malformedKey
        /// Something other than whitespace follows the key.
        case trailingCharacters
        /// A private key file is readable by group or others.
        case insecurePermissions
        /// A system call failed; see `errno`.
        case system
    }

    /// What kind of failure this is.
    public var code: Code
    /// One line saying what was wrong and, where possible, how to fix it.
    public var message: String
    /// The underlying errno, when a system call failed.
    public var errno: Errno?

    /// Creates an error; `message` must not contain secrets.
    public init(_ code: Code, _ message: String, errno: Errno? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    public var description: String {
        if let errno { return "\(message): \(errno)" }
        return message
    }
}
