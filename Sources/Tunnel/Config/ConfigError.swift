/// A mistake in a config file: which file, which line, what was expected.
public struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file, as the user named it.
    public var file: String
    /// 1-based line number; 0 when the error is about the file as a whole.
    public var line: Int
    /// What was wrong and what was expected. Never holds a secret.
    public var message: String

    /// Creates an error at `file:line`.
    public init(file: String, line: Int, _ message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    /// `FILE:LINE: message`, or `FILE: message` for whole-file errors.
    public var description: String {
        line > 0 ? "\(file):\(line): \(message)" : "\(file): \(message)"
    }
}
