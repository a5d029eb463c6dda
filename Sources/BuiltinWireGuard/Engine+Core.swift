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
    /// Runs the data plane for interface `name` with `config` (`wg setconf`
    /// semantics: private key, peers; `listenPort` is the port `socket` is
    /// bound to) on a TUN of `mtu` bytes (padding never grows a packet past
    /// it): makes the protocol core, configures it through the engine's
    /// timer output (so that a persistent keepalive goes out at once, as
    /// `wg set` makes the kernel's do), and runs the engine until the
    /// supervisor closes `control` (with `housekeeping` on its timer
    /// thread, see `run(control:housekeeping:)`). Throws only before it runs.
    public static func run(_ config: DeviceConfig, mtu: Int, name: String, tun: Int32, offloads: TUNOffloads,
                           socket: UDPSocket, control: Int32, housekeeping: ((Engine) -> Void)? = nil) throws(BuiltinError) -> Never {
        let device = WireGuardDevice()
        device.boundPort = socket.port
        device.mtu = mtu
        let engine = Engine(core: device, name: name, tun: tun, offloads: offloads, socket: socket)
        try device.configure(config, sink: engine.timerSide)
        engine.run(control: control, housekeeping: housekeeping)
    }
}
