import WGNetlink

extension EngineOutput: PacketSink {
    /// `PacketSink`: one datagram to the UDP socket.
    public func sendDatagram(_ bytes: UnsafeRawBufferPointer, to endpoint: SocketAddress) { send(bytes, to: endpoint) }
    /// `PacketSink`: one decrypted packet to the TUN.
    public func writeToTUN(_ packet: UnsafeRawBufferPointer) { write(packet) }
}

extension WireGuardDevice: EngineCore {
    /// `EngineCore`: `handleOutgoing`.
    public func engineOutgoing(_ packet: UnsafeRawBufferPointer, output: EngineOutput) { handleOutgoing(packet, sink: output) }
    /// `EngineCore`: `handleIncoming`.
    public func engineIncoming(_ datagram: UnsafeRawBufferPointer, from source: SocketAddress, output: EngineOutput) {
        handleIncoming(datagram, from: source, sink: output)
    }
    /// `EngineCore`: `tick`.
    public func engineTick(output: EngineOutput) { tick(sink: output) }
    /// `EngineCore`: `nextDeadline`.
    public var engineDeadline: UInt64 { nextDeadline }
    /// `EngineCore`: `snapshot`.
    public func engineSnapshot(name: String) -> Device { snapshot(name: name) }
    /// `EngineCore`: `configure(_:sink:)`.
    public func engineConfigure(_ config: DeviceConfig, output: EngineOutput) throws(BuiltinError) {
        try configure(config, sink: output)
    }
}

extension Engine {
    /// The protocol core for `config` (`wg setconf` semantics: private key,
    /// peers; `listenPort` is the port the socket is bound to) on a TUN of
    /// `mtu` bytes (padding never grows a packet past it).
    public static func makeCore(_ config: DeviceConfig, mtu: Int) throws(BuiltinError) -> any EngineCore {
        let device = WireGuardDevice()
        try device.configure(config)
        device.boundPort = config.listenPort ?? 0
        device.mtu = mtu
        return device
    }
}
