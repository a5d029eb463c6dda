/// The one error type of the built-in data plane: a code to match on and a
/// one-line message that says what was wrong. Messages never hold key
/// material.
public struct BuiltinError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, to match on.
    public enum Code: Sendable, Hashable {
        /// A configuration was refused (too many peers, a bad value).
        case invalidConfiguration
        /// A cryptographic primitive failed (libsodium could not start).
        case crypto
        /// The system refused a resource (locked memory).
        case resource
    }

    /// What went wrong.
    public var code: Code
    /// One line for a person.
    public var message: String

    /// Wraps a code and a message.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The message.
    public var description: String { message }
}
